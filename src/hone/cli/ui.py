"""``hone ui``: the web UI over the workspace."""

from __future__ import annotations

import typer
from rich.markup import escape

from hone.cli.output import console
from hone.cli.state import state

__all__ = ["ui"]


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8701, "--port", help="Port (0: any free one)."),
    workspace: str | None = typer.Option(
        None, "--workspace", "-w", help="Workspace folder (default: hone's own --workspace)."
    ),
    token: str = typer.Option(
        None,
        "--token",
        envvar="HONE_UI_TOKEN",
        help="Require this token (needed off loopback); the browser signs in once.",
        show_envvar=True,
    ),
    public_url: str = typer.Option(
        None,
        "--public-url",
        help="Behind a reverse proxy (TLS): the URL browsers open, e.g. https://hone.example.com.",
    ),
) -> None:
    """Open the workspace in a browser: runs, datasets, models, predictions, labeling; the
    JSON API the pages read is under /api (OpenAPI at /api/docs)."""
    try:
        from hone.server.run import serve_ui
        from hone.server.settings import UiSettings
    except ImportError as exc:
        from hone.errors import UserError

        raise UserError(
            f"hone ui needs the serve extra ({exc.name} is missing): pip install 'hone[serve]'"
        ) from None

    if workspace is not None:
        state.home = workspace
    ws = state.opened()
    settings = UiSettings(
        workspace=str(ws.home),
        host=host,
        port=port,
        token=token or None,
        public_url=public_url or None,
    )

    def ready(url: str) -> None:
        console.print(f"[bold]hone ui[/] on {escape(str(ws.home))}")
        if settings.token is None:
            console.print(f"  open      {url}/")
        else:
            console.print(f"  open      {url}/login?token=…  (the token you gave)")
        console.print(f"  API       {url}/api/docs")
        console.print("Ctrl+C stops")
        console.file.flush()

    serve_ui(settings, on_ready=ready)
