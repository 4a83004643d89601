"""``hone loop``: labeled predictions → new data → a challenger → promoted if it is better."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import typer
from rich.markup import escape

from hone.cli.output import console, err_console, print_json
from hone.cli.predictions import parse_duration
from hone.cli.state import state
from hone.errors import ConflictError, HoneError, ValidationError, exit_code_for

__all__ = ["loop_app"]

log = logging.getLogger("hone.loop")

loop_app = typer.Typer(
    help="The feedback loop: harvest labeled predictions, retrain, promote if better.",
    no_args_is_help=True,
)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
FRESH = typer.Option(
    0.2, "--fresh-share", help="Share of the freshest labeled predictions held out to judge on."
)
PREPROCESSING = typer.Option(
    "auto",
    "--preprocessing",
    help="keep the champion's fitted normalization, refit it on the new train split, or auto "
    "(refit only when production drifted far past it).",
)


@loop_app.command("harvest")
def harvest_cmd(
    name: str = typer.Argument(..., help="Model name."),
    champion: str = typer.Option("champion", "--champion", help="The alias whose data grows."),
    fresh_share: float = FRESH,
    preprocessing: str = PREPROCESSING,
    json_out: bool = JSON,
) -> None:
    """A new dataset version: the champion's training data plus the labeled predictions it
    does not hold (the freshest share held out as the 'fresh' split)."""
    from hone.loop.cycle import champion_base
    from hone.models.workspace import opened
    from hone.predictions import harvest
    from hone.registry.refs import check_alias, check_model_name

    check_model_name(name)
    check_alias(champion)
    ws = opened(state.opened())
    _, base = champion_base(ws.db, ws.blobs, ws.workspace.home, name, champion)
    done = harvest(
        ws.db, ws.blobs, name, base, fresh_share=fresh_share, preprocessing=preprocessing
    )
    if json_out:
        print_json(done.to_dict())
        return
    console.print(
        f"[bold]{escape(done.version.ref)}[/]: {escape(done.base.ref)} + {done.rows:,} labeled "
        f"predictions of {escape(name)} ({done.splits['train']:,} train, "
        f"{done.splits['fresh']:,} fresh)"
    )
    console.print(f"preprocessing {escape(done.why)}")


def _print(result: Any) -> None:
    style = {"promoted": "green", "held": "yellow", "skipped": "dim"}.get(result.outcome, "")
    console.print(f"[{style}]{result.outcome}[/]: {escape(result.message)}")
    if result.run_id:
        console.print(f"  loop run {result.run_id} (hone runs show {result.run_id})")


@loop_app.command("run")
def run_cmd(
    name: str = typer.Argument(..., help="Model name."),
    min_new_labels: int = typer.Option(
        1, "--min-new-labels", help="Do nothing unless this many new labels are waiting."
    ),
    fresh_share: float = FRESH,
    preprocessing: str = PREPROCESSING,
    gate: str = typer.Option(
        "accuracy > champion", "--gate", help="What the challenger must satisfy to be promoted."
    ),
    nproc: int = typer.Option(
        1, "--nproc", help="Training processes (torchrun) for the challenger."
    ),
    trials: int = typer.Option(
        0, "--trials", help="A short study first: trials of the recipe's search space (0: none)."
    ),
    json_out: bool = JSON,
) -> None:
    """Harvest → (a short study) → train a challenger with the champion's recipe and params
    → register it as 'challenger' → promote it to 'champion' through the gate, judged on the
    fresh rows."""
    from hone.loop import run_loop

    ws = state.opened()
    options: dict[str, Any] = {
        "min_new_labels": min_new_labels,
        "fresh_share": fresh_share,
        "preprocessing": preprocessing,
        "gate": gate,
        "nproc": nproc,
        "trials": trials,
        "workspace": ws,
    }
    if json_out:
        print_json(run_loop(name, **options).to_dict())
        return
    with console.status("running the loop", spinner="dots"):
        result = run_loop(
            name, say=lambda text: console.print(f"[dim]{escape(text)}[/]"), **options
        )
    _print(result)


@loop_app.command("watch")
def watch_cmd(
    name: str = typer.Argument(..., help="Model name."),
    min_new_labels: int = typer.Option(
        100, "--min-new-labels", help="Run the loop when this many new labels are waiting."
    ),
    every: str = typer.Option("1m", "--every", help="How often to check: 30s, 1m, 1h."),
    max_runs: int = typer.Option(
        0, "--max-runs", help="Stop after this many loop runs (0: never)."
    ),
    fresh_share: float = FRESH,
    preprocessing: str = PREPROCESSING,
    gate: str = typer.Option("accuracy > champion", "--gate", help="The promotion gate."),
    nproc: int = typer.Option(1, "--nproc", help="Training processes for each challenger."),
) -> None:
    """Run the loop whenever enough new labels have arrived (until Ctrl+C or --max-runs).
    A failed loop run is reported and the watch goes on; the champion stays as it was."""
    from hone.loop import new_labels, run_loop

    interval = parse_duration(every, "--every")
    if max_runs < 0:
        raise ValidationError(f"--max-runs {max_runs}: give 0 (never stop) or more")
    if min_new_labels < 1:
        raise ValidationError(f"--min-new-labels {min_new_labels}: give a whole number >= 1")
    ws = state.opened()
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runs = 0
    console.print(
        f"watching {escape(name)}: the loop runs when {min_new_labels:,} new labels are waiting "
        f"(checked every {escape(every)}; Ctrl+C stops)"
    )
    try:
        while not stop.is_set():
            try:
                waiting = new_labels(name, workspace=ws)
                if waiting >= min_new_labels:
                    console.print(f"{waiting:,} new labels: running the loop")
                    result = run_loop(
                        name,
                        min_new_labels=min_new_labels,
                        fresh_share=fresh_share,
                        preprocessing=preprocessing,
                        gate=gate,
                        nproc=nproc,
                        workspace=ws,
                        say=lambda text: console.print(f"[dim]{escape(text)}[/]"),
                    )
                    _print(result)
                    runs += 1
            except ConflictError as exc:
                err_console.print(f"[yellow]skipped[/]: {escape(str(exc))}")
            except HoneError as exc:
                err_console.print(
                    f"[red]the loop failed[/] (exit {exit_code_for(exc)}): {escape(str(exc))}; "
                    "the champion is unchanged; trying again at the next check"
                )
                runs += 1
            except Exception as exc:  # a watch outlives any one run's failure
                log.exception("hone: a loop run failed unexpectedly")
                err_console.print(
                    f"[red]the loop failed[/]: {escape(type(exc).__name__)}: "
                    f"{escape(str(exc)[:300])}; the champion is unchanged; trying again at the "
                    "next check"
                )
                runs += 1
            if max_runs and runs >= max_runs:
                break
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print(f"stopped watching {escape(name)} after {runs} loop run{'s' * (runs != 1)}")
