"""Starting the server: the model loaded and the port bound before uvicorn starts (so a
wrong reference or a taken port is one clear error), then uvicorn with uvloop and httptools,
one worker in this process or several worker processes sharing the socket."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from typing import Any

from hone.blobs import open_blob_store
from hone.config import Workspace
from hone.errors import UserError
from hone.registry.refs import parse_model_ref
from hone.serve.served import Served, load_served
from hone.serve.settings import ENV, ServeSettings
from hone.store.database import database_for

__all__ = ["bind", "prepare", "serve"]


def prepare(settings: ServeSettings) -> Served:
    """The served model, loaded now: an unknown model, alias or missing ONNX export is
    said before any port is taken."""
    ws = Workspace.discover(settings.workspace).require()
    db = database_for(ws.store_uri)
    db.check_schema()
    return load_served(
        db, open_blob_store(ws.blob_uri), parse_model_ref(settings.ref), settings.threads
    )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is taken: pass another --port") from None
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    settings: ServeSettings,
    served: Served,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (answering what is queued and writing every recorded
    prediction to the store before exiting)."""
    import uvicorn

    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    common: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "server_header": False,
        "date_header": False,
    }
    if settings.workers == 1:
        from hone.serve.app import create_app

        config = uvicorn.Config(create_app(settings, served), fd=sock.fileno(), **common)
        server = uvicorn.Server(config)
        if on_ready is not None:
            on_ready(url)
        server.run(sockets=[sock])
        return
    # Several processes: each loads the model and keeps its own journal segment; their
    # Prometheus values meet in one folder, read by whichever answers /metrics.
    metrics_dir = tempfile.mkdtemp(prefix="hone-serve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ[ENV] = settings.to_env()
    try:
        config = uvicorn.Config(
            "hone.serve.app:from_environment",
            factory=True,
            workers=settings.workers,
            fd=sock.fileno(),
            **common,
        )
        if on_ready is not None:
            on_ready(url)
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.environ.pop(ENV, None)
