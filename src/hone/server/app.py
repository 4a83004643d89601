"""The UI's ASGI application: the JSON API under ``/api`` (OpenAPI at ``/api/docs``), the
built pages at ``/``, and the guard in front of both."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from hone.errors import FilterError, HoneError, UserError, http_status_for
from hone.models.workspace import Opened
from hone.serve.settings import is_loopback
from hone.server.api_data import data_router
from hone.server.api_models import models_router
from hone.server.api_predictions import predictions_router
from hone.server.api_runs import ParameterError, runs_router
from hone.server.assets import static_dir
from hone.server.responses import Refused, json_response
from hone.server.security import CSRF_HEADER, Guard
from hone.server.settings import UiSettings

__all__ = ["create_app"]

log = logging.getLogger("hone.ui")
VERSION = version("hone")  # the package's, not `hone.__version__`: that imports layer 5


def create_app(settings: UiSettings, ws: Opened) -> Guard:
    """The app to serve: the API and pages behind their guard (which holds the CSRF token
    the pages send)."""
    static = static_dir()
    api = FastAPI(
        title="hone UI API",
        version=VERSION,
        summary="What the hone web UI reads and changes: the functions the CLI calls.",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: ours ships in the package
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    guard = Guard(
        api,
        token=settings.token,
        loopback_only=is_loopback(settings.host),
        public_url=settings.public_url,
    )

    @api.get("/api/health", tags=["ui"], summary="Liveness (open without the token)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/api/session", tags=["ui"], summary="This UI's workspace and CSRF token")
    def session() -> dict[str, Any]:
        return {
            "workspace": str(ws.workspace.home),
            "store": ws.db.display_url(),
            "version": VERSION,
            "csrf": guard.csrf,
            "csrf_header": CSRF_HEADER,
        }

    for router in (runs_router(ws), data_router(ws), models_router(ws), predictions_router(ws)):
        api.include_router(router)

    @api.exception_handler(HoneError)
    async def hone_error(request: Request, exc: HoneError) -> Response:
        status = exc.status if isinstance(exc, Refused) else http_status_for(exc)
        if isinstance(exc, UserError) and status >= 500:
            status = 400
        body: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, ParameterError):
            body["parameter"] = exc.parameter
        if isinstance(exc, FilterError | ParameterError) and exc.position is not None:
            body["position"] = exc.position
        return json_response(body, status)

    @api.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return json_response({"error": _problems(exc.errors())}, 422)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own refusals (a method a route does not take, ...) in the API's shape.
        return json_response(
            {"error": f"{request.method} {request.url.path}: {exc.detail}"}, exc.status_code
        )

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("hone ui: unexpected error answering %s: %r", request.url.path, exc)
        return json_response({"error": f"the UI server failed: {type(exc).__name__}"}, 500)

    @api.get("/api/docs", include_in_schema=False)
    def docs() -> Response:
        return FileResponse(static / "docs.html", headers={"cache-control": "no-cache"})

    @api.get("/api/{rest:path}", include_in_schema=False)
    def unknown(rest: str) -> Response:
        return json_response({"error": f"no API endpoint /api/{rest}"}, 404)

    api.mount("/assets", StaticFiles(directory=static / "assets"), name="assets")

    @api.get("/", include_in_schema=False)
    def index() -> Response:
        return FileResponse(static / "index.html", headers={"cache-control": "no-cache"})

    return guard


def _problems(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line naming each place: ``query.limit: ...``,
    ``request body: ...``, ``request body item 2.label: ...``."""
    problems = []
    if len(errors) > 1:
        # A body that may be one thing or a list of them: keep the errors of the form it had.
        shapes = ("list_type", "model_type", "model_attributes_type", "dict_type")
        errors = [e for e in errors if e.get("type") not in shapes] or errors
    for error in errors[:5]:
        kind = error.get("type", "")
        loc = [str(part) for part in error.get("loc", ())]
        if kind == "json_invalid":
            problems.append(
                f"the request body is not valid JSON ({error.get('ctx', {}).get('error', '')})"
            )
            continue
        if loc and loc[0] == "body":
            # Pydantic names the union member it tried (Label, list[Label]): not the user's.
            rest = [p for p in loc[1:] if p not in ("Label", "list[Label]")]
            where = "request body" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rest)
        else:
            where = ".".join(loc) or "request"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"
