"""``hone serve``: a registered model over HTTP, recording what it is asked and answers."""

from __future__ import annotations

import os

import typer
from rich.markup import escape

from hone.cli.output import console, err_console
from hone.cli.state import state

__all__ = ["serve"]


def serve(
    ref: str = typer.Argument(..., help="NAME@ALIAS (follows the alias), NAME@N, or NAME."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8700, "--port", help="Port (0: any free one)."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    max_batch: int = typer.Option(64, "--max-batch", help="Rows per model call."),
    max_wait_ms: float = typer.Option(
        0.0, "--max-wait-ms", help="Extra wait for a batch to fill (0: take what is queued)."
    ),
    max_instances: int = typer.Option(1024, "--max-instances", help="Instances per request."),
    token: str = typer.Option(
        None,
        "--token",
        envvar="HONE_SERVE_TOKEN",
        help="Require 'Authorization: Bearer TOKEN' (needed off loopback).",
        show_envvar=True,
    ),
    record: bool = typer.Option(
        True, "--record/--no-record", help="Record every prediction in the store."
    ),
    reload_every: float = typer.Option(
        2.0, "--reload-every", help="Seconds between checks of where the alias points."
    ),
    threads: int = typer.Option(1, "--threads", help="onnxruntime threads per worker."),
) -> None:
    """Serve a registered model: POST /v1/models/NAME/predict, POST /v1/feedback,
    GET /v1/models/NAME, /healthz, /metrics, /docs. Switches version when the alias moves."""
    from hone.serve.run import prepare
    from hone.serve.run import serve as run_server
    from hone.serve.settings import ServeSettings

    ws = state.opened()
    settings = ServeSettings(
        ref=ref,
        workspace=str(ws.home),
        host=host,
        port=port,
        workers=workers,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_instances=max_instances,
        token=token or None,
        record=record,
        reload_every_s=reload_every,
        threads=threads,
    )
    with console.status(f"loading {escape(ref)}", spinner="dots"):
        served = prepare(settings)

    def ready(url: str) -> None:
        version = served.version
        follows = "" if "@" in ref and ref.rsplit("@", 1)[1].isdigit() else f" (following {ref})"
        console.print(
            f"serving [bold]{escape(version.ref)}[/]{escape(follows)} on {url} "
            f"with {workers} worker{'s' * (workers > 1)}"
        )
        console.print(f"  predict:  POST {url}/v1/models/{escape(version.model)}/predict")
        console.print(
            f"  feedback: POST {url}/v1/feedback   docs: {url}/docs   metrics: {url}/metrics"
        )
        if not record:
            err_console.print("predictions are not recorded (--no-record)")
        console.print("Ctrl+C stops (what was answered is written to the store first)")
        console.file.flush()

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run_server(settings, served, on_ready=ready)
