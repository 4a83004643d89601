"""Starting ``hone ui``: the port bound before uvicorn starts (a taken port is one line),
then one process serving until SIGINT/SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

from hone.models.workspace import opened
from hone.serve.run import bind
from hone.server.app import create_app
from hone.server.settings import UiSettings

__all__ = ["serve_ui"]


def serve_ui(settings: UiSettings, *, on_ready: Callable[[str], None] | None = None) -> None:
    import uvicorn

    app = create_app(settings, opened(settings.workspace))
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(
        app,
        fd=sock.fileno(),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    if on_ready is not None:
        on_ready(f"http://{shown}:{port}")
    uvicorn.Server(config).run(sockets=[sock])
