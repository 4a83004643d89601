"""The ``hone`` command: the root app, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import sys

import typer
from rich.text import Text

from hone.cli.data import data_app
from hone.cli.loop import loop_app
from hone.cli.models import models_app
from hone.cli.output import err_console
from hone.cli.predictions import feedback_app, predictions_app
from hone.cli.quickstart import quickstart
from hone.cli.runs import runs_app
from hone.cli.serve import serve
from hone.cli.setup import db_app, init
from hone.cli.state import state
from hone.cli.sync import sync
from hone.cli.train import train
from hone.cli.tune import tune_app
from hone.cli.ui import ui
from hone.errors import HoneError, exit_code_for

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="hone",
    help="hone: a deep-learning model's whole life, and back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    workspace: str | None = typer.Option(
        None,
        "--workspace",
        "-w",
        envvar="HONE_HOME",
        help="Workspace folder (default ./.hone).",
    ),
) -> None:
    state.home = workspace


app.command("init")(init)
app.command("sync")(sync)
app.command("quickstart")(quickstart)
app.command("train")(train)
app.command("serve")(serve)
app.command("ui")(ui)
app.add_typer(tune_app, name="tune")
app.add_typer(models_app, name="models")
app.add_typer(predictions_app, name="predictions")
app.add_typer(feedback_app, name="feedback")
app.add_typer(loop_app, name="loop")
app.add_typer(runs_app, name="runs")
app.add_typer(data_app, name="data")
app.add_typer(db_app, name="db")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    A HoneError prints one clear line (never a traceback) and exits with the code that
    ``hone.errors`` maps it to; usage errors are Typer's own (exit 2).
    """
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        app(args=argv, prog_name="hone")
    except HoneError as exc:
        # Text, not markup: messages quote user input, which may contain [brackets].
        err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        return exit_code_for(exc)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
