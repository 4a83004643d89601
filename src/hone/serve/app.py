"""The model server: a FastAPI app over onnxruntime.

``POST /v1/models/{name}/predict`` checks each request against the signature, batches
concurrent requests into one model call, records every answered instance (journal first,
store in the background) and answers with a request id per instance; ``POST /v1/feedback``
attaches true labels to past predictions; ``GET /v1/models/{name}``, ``/healthz`` and
``/metrics`` (Prometheus) describe the server. The handlers read and write JSON themselves
(no Pydantic model per request: it would cost more than the model call); the OpenAPI schema
still describes every body.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from hone.blobs import BlobStore, open_blob_store
from hone.config import Workspace
from hone.errors import HoneError, NotFoundError, UserError, http_status_for
from hone.predictions import FeedbackItem, Recorder, give_feedback_many, replay_abandoned
from hone.predictions.feedback import MAX_LABELS
from hone.registry.refs import parse_model_ref
from hone.serve.batcher import Batcher, NoAnswer
from hone.serve.metrics import CONTENT_TYPE_LATEST, Metrics
from hone.serve.requests import Refusal, instances_of, read_json
from hone.serve.schemas import openapi_bodies
from hone.serve.served import Holder, Served, load_served
from hone.serve.settings import ServeSettings
from hone.store.database import Database, database_for

__all__ = ["create_app", "from_environment"]

log = logging.getLogger("hone.serve")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _json(body: Any, status: int = 200) -> Response:
    # orjson writes NumPy arrays itself (float32 probabilities in their shortest form).
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


class TokenGuard:
    """Every request but ``/healthz`` must carry ``Authorization: Bearer TOKEN`` (a pure
    ASGI layer: no per-request cost beyond the comparison)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = b"bearer " + token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = b""
            for key, value in scope["headers"]:
                if key == b"authorization":
                    given = value
                    break
            scheme, _, token = given.partition(b" ")
            if not hmac.compare_digest(scheme.lower() + b" " + token.strip(), self.expected):
                body = b'{"error":"this server needs a token: send Authorization: Bearer TOKEN"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class Server:
    """What one worker holds while it serves."""

    def __init__(self, settings: ServeSettings, served: Served | None) -> None:
        self.settings = settings
        self.ref = parse_model_ref(settings.ref)
        self.name = self.ref.name
        self._preloaded = served
        self.db: Database
        self.blobs: BlobStore
        self.holder: Holder
        self.metrics: Metrics
        self.recorder: Recorder | None = None
        self.batcher: Batcher
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        ws = Workspace.discover(self.settings.workspace).require()
        self.db = database_for(ws.store_uri)
        self.blobs = open_blob_store(ws.blob_uri)
        served = self._preloaded
        if served is None:
            served = await asyncio.to_thread(
                load_served, self.db, self.blobs, self.ref, self.settings.threads
            )
        self.holder = Holder(served, self.ref)
        self.metrics = Metrics(self.name)
        if self.settings.record:
            journal_dir = ws.journal_dir / "predictions"
            replayed = await asyncio.to_thread(replay_abandoned, self.db, self.blobs, journal_dir)
            if replayed:
                log.warning("hone: wrote %d predictions a stopped server had journaled", replayed)
            self.recorder = Recorder(self.db, self.blobs, journal_dir)
        self.batcher = Batcher(
            self.holder,
            self.recorder,
            self.metrics,
            max_batch=self.settings.max_batch,
            max_wait_ms=self.settings.max_wait_ms,
        )
        self._tasks.append(asyncio.create_task(self.batcher.run()))
        self._tasks.append(asyncio.create_task(self._housekeeping()))
        if self.holder.follows:
            self._tasks.append(
                asyncio.create_task(
                    self.holder.watch(
                        self.db, self.blobs, self.settings.reload_every_s, self.settings.threads
                    )
                )
            )
        self._update_metrics()
        # What is loaded now lives as long as the server: out of the collector's sight, so
        # its full collections stop scanning it (they were the p99's 30 ms at 16
        # connections); and the GIL handed between the event loop and the flusher's thread
        # every millisecond rather than five, so a flush never holds a request that long.
        gc.collect()
        gc.freeze()
        sys.setswitchinterval(0.001)

    async def stop(self) -> None:
        """Answer what is queued, then write every recorded prediction to the store."""
        await self.batcher.close()
        batching, *others = self._tasks
        with contextlib.suppress(Exception):
            await asyncio.wait_for(batching, 30)
        for task in others:
            task.cancel()
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.close)
            self._update_metrics()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._update_metrics()

    def _update_metrics(self) -> None:
        self.metrics.update(
            self.holder.current.number,
            None if self.recorder is None else self.recorder.stats,
            self.holder.reloads,
            self.holder.reload_failures,
        )

    def flush_predictions(self) -> None:
        """Write what the recorder holds now (feedback for a prediction just made)."""
        if self.recorder is not None:
            with self.recorder.lock:
                self.recorder.flush()


def create_app(settings: ServeSettings, served: Served | None = None) -> FastAPI:
    server = Server(settings, served)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(
        title="hone model server",
        summary=f"Serves {settings.ref}: predictions, feedback labels, metrics.",
        lifespan=lifespan,
        **_no_telemetry(),
    )
    app.state.server = server
    bodies = openapi_bodies()
    name = server.name

    def refuse(endpoint: str, status: int, message: str, reason: str, **extra: Any) -> Response:
        server.metrics.refused(endpoint, status, reason)
        return _json({"error": message, **extra}, status)

    async def predict(request: Request) -> Response:
        arrived = time.perf_counter()
        current = server.holder.current
        model = request.path_params["model"]
        if model != name:
            return refuse(
                "predict", 404, f"this server serves {name!r}, not {model!r}", "not_found"
            )
        try:
            body, text = await read_json(request, settings.max_body_bytes)
            x = instances_of(body, text, current.predictor, settings.max_instances)
        except Refusal as refusal:
            return refuse(
                "predict",
                refusal.status,
                refusal.message,
                refusal.reason,
                signature=current.takes(),
            )
        try:
            answer = await server.batcher.predict(x, arrived, current)
        except NoAnswer as exc:
            return refuse("predict", 422, str(exc), "bad_request", signature=current.takes())
        except Exception as exc:
            log.exception("hone: a prediction failed")
            return refuse("predict", 500, f"the model failed: {str(exc)[:300]}", "internal")
        probabilities = answer.probabilities
        instances = [
            {
                "request_id": request_id,
                "label": output,
                **({} if probabilities is None else {"probabilities": probabilities[i]}),
            }
            for i, (request_id, output) in enumerate(
                zip(answer.request_ids, answer.outputs, strict=True)
            )
        ]
        version = answer.served.version
        out = {
            "model": version.model,
            "version": version.version,
            "classes": version.signature.get("classes"),
            "predictions": instances,
        }
        server.metrics.answered(time.perf_counter() - arrived, len(instances))
        return _json(out)

    # The hot path is a plain Starlette route, first in the table: FastAPI's parameter
    # machinery would cost a tenth of a request. The FastAPI route below, never reached
    # for a POST, documents it in the OpenAPI schema.
    app.router.routes.insert(0, Route("/v1/models/{model}/predict", predict, methods=["POST"]))

    @app.post(
        "/v1/models/{model}/predict",
        summary="Predict for one or many instances",
        openapi_extra=bodies["predict"],
    )
    async def predict_documented(model: str, request: Request) -> Response:
        return await predict(request)

    @app.post(
        "/v1/feedback",
        summary="Give true labels for past predictions",
        openapi_extra=bodies["feedback"],
    )
    async def feedback(request: Request) -> Response:
        try:
            body, _ = await read_json(request, 8 << 20)
            items = _feedback_items(body)
        except Refusal as refusal:
            return refuse("feedback", refusal.status, refusal.message, refusal.reason)
        try:
            results = await run_in_threadpool(_give, server, items)
        except HoneError as exc:
            status = http_status_for(exc)
            if isinstance(exc, UserError):
                status = 422
            reason = {404: "not_found", 422: "bad_request", 503: "unavailable"}.get(
                status, "internal"
            )
            return refuse("feedback", status, str(exc), reason)
        server.metrics.ok("feedback")
        if isinstance(body, list):
            return _json({"feedback": [r.to_dict() for r in results]})
        return _json(results[0].to_dict())

    @app.get("/v1/models/{model}", summary="The served version and its signature")
    async def describe(model: str) -> Response:
        if model != name:
            return refuse("model", 404, f"this server serves {name!r}, not {model!r}", "not_found")
        server.metrics.ok("model")
        return _json(server.holder.current.describe(server.ref))

    @app.get("/healthz", summary="Liveness and the served version")
    async def healthz() -> Response:
        current = server.holder.current
        return _json({"status": "ok", "model": name, "version": current.number})

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        server._update_metrics()
        return Response(server.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("hone: unexpected error answering %s: %r", request.url.path, exc)
        server.metrics.refused("other", 500, "internal")
        return _json({"error": f"the server failed: {type(exc).__name__}"}, 500)

    if settings.token is not None:
        app.add_middleware(TokenGuard, token=settings.token)
    return app


def _no_telemetry() -> dict[str, Any]:
    """FastAPI's built-in OpenTelemetry off (newer FastAPI checks for it on every request);
    /metrics is the server's telemetry."""
    import inspect

    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def _feedback_items(body: Any) -> list[FeedbackItem]:
    expected = 'send {"request_id": "...", "label": ...} or a list of them'
    entries = body if isinstance(body, list) else [body]
    if not entries:
        raise Refusal(422, f"an empty list: {expected}", "bad_request")
    if len(entries) > MAX_LABELS:
        raise Refusal(
            413, f"{len(entries):,} labels in one request; at most {MAX_LABELS:,}", "too_large"
        )
    items = []
    for i, entry in enumerate(entries):
        where = f"item {i}" if isinstance(body, list) else ""
        if not isinstance(entry, dict) or set(entry) != {"request_id", "label"}:
            raise Refusal(422, f"{where + ': ' if where else ''}{expected}", "bad_request")
        items.append(FeedbackItem(entry["request_id"], entry["label"], where))
    return items


def _give(server: Server, items: list[FeedbackItem]) -> list[Any]:
    try:
        return give_feedback_many(server.db, items, source="api")
    except NotFoundError as exc:
        if server.recorder is None:
            raise NotFoundError(
                f"{exc} (this server does not record predictions: --no-record)"
            ) from None
    # The prediction may be answered but still on its way to the store: from this worker
    # (written now), or from another worker of this server (written within its next flush).
    with contextlib.suppress(HoneError, OSError):
        server.flush_predictions()
    deadline = time.monotonic() + (FEEDBACK_WAIT_S if server.settings.workers > 1 else 0.0)
    while True:
        try:
            return give_feedback_many(server.db, items, source="api")
        except NotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


#: How long feedback for an unknown request id waits for other workers' flushes (each
#: flushes every second) before it answers 404.
FEEDBACK_WAIT_S = 2.5


def _die_with_the_supervisor() -> None:
    """A worker process ends when ``hone serve``'s supervisor does, even by SIGKILL (else it
    would go on serving, orphaned, holding the port)."""
    if sys.platform != "linux":
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the supervisor died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def from_environment() -> FastAPI:
    """The app of one of uvicorn's worker processes (``hone serve --workers N``)."""
    _die_with_the_supervisor()
    return create_app(ServeSettings.from_env())
