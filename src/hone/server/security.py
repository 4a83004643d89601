"""What stands between a browser and the workspace: a pure ASGI layer in front of the app.

- **Host**: bound to loopback, only requests naming a loopback host are served, so a
  hostile page cannot reach the UI by pointing its own domain at 127.0.0.1 (DNS rebinding).
- **Token** (required off loopback, as for ``hone serve``): ``Authorization: Bearer TOKEN``,
  or, for a browser, the cookie ``/login?token=TOKEN`` sets (a digest of the token, under
  a name of its own; HttpOnly, SameSite=Strict).
- **Cross-site requests**: a request that changes state (any method but GET, HEAD,
  OPTIONS) must carry ``X-Hone-CSRF`` equal to this server's CSRF token, which only a page
  of this origin can read (``GET /api/session``; no CORS is ever granted), and an
  ``Origin``, when sent, must be this server's own.
- **Headers** on every answer: a Content-Security-Policy allowing only this origin's
  scripts, no framing, no sniffing, no referrer (a token in a login URL stays here).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import re
import secrets
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hone.serve.settings import is_loopback

__all__ = ["COOKIE", "CSRF_HEADER", "Guard"]

log = logging.getLogger("hone.ui")

COOKIE = "hone_ui_token"
#: The largest request body (labels, an alias move): 10,000 labels fit many times over.
MAX_BODY = 8 << 20
CSRF_HEADER = "x-hone-csrf"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_OPEN_PATHS = frozenset({"/login", "/api/health"})
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_LOGIN_FORM = (
    "<!doctype html><meta charset=utf-8><title>hone: sign in</title>"
    "<body style='font:15px system-ui;margin:4em auto;max-width:30em'>"
    "<h1>hone</h1><p>{message}</p><form method=get action=/login>"
    "<input name=token type=password placeholder='token' autofocus size=40> "
    "<button>open</button></form>"
)


class _TooLarge(BaseException):
    """A body past the limit. Not an Exception: FastAPI turns those raised while it reads a
    body into a 400, and this must reach the guard."""


_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::[0-9]{1,5})?")


def _host_of(value: str) -> str:
    """The host part of a Host header (no port, no brackets); "" when it is not one."""
    found = _HOST.fullmatch(value)
    if found is None:
        return ""
    return found.group("v6") or found.group("name")


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        loopback_only: bool,
        public_url: str | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only
        # Behind a reverse proxy (TLS): the origin browsers see, whose Host and Origin are
        # this UI's own too; its cookie is then Secure when that origin is https.
        public = urlsplit(public_url) if public_url else None
        self.public_origin = f"{public.scheme}://{public.netloc}" if public else None
        self.public_host = public.netloc if public else None
        self.secure = public is not None and public.scheme == "https"
        self.csrf = secrets.token_urlsafe(32)
        # The cookie holds a digest of the token: any printable token fits a cookie, and
        # the token itself never sits in the browser's cookie jar.
        self.cookie = hashlib.sha256(b"hone-ui:" + token.encode()).hexdigest() if token else ""
        # Cookies are shared by every port of a host: each token signs in under its own name,
        # so two UIs on one machine keep their sign-ins apart.
        self.cookie_name = f"{COOKIE}_{hashlib.sha256(self.cookie.encode()).hexdigest()[:12]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # a websocket: the UI has none, and none gets past
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        host = headers.get("host", "")
        if self.loopback_only and not (is_loopback(_host_of(host)) or host == self.public_host):
            await _answer(send, 421, f"this UI answers on loopback only, not for host {host!r}")
            return
        if self.token is not None and path not in _OPEN_PATHS and not self._signed_in(headers):
            if path.startswith("/api/"):
                await _answer(
                    send,
                    401,
                    "this UI needs a token: send 'Authorization: Bearer TOKEN', or open "
                    "/login?token=TOKEN in the browser",
                    extra=[(b"www-authenticate", b"Bearer")],
                )
            else:
                await _page(send, 401, "This UI needs its token (hone ui printed it).")
            return
        if path == "/login":
            await self._login(scope, send)
            return
        if scope["method"] not in _SAFE:
            refused = self._cross_site(headers, host)
            if refused:
                await _answer(send, 403, refused)
                return
            declared = headers.get("content-length", "0")
            if not declared.isdigit():
                await _answer(send, 400, f"Content-Length {declared[:40]!r} is not a length")
                return
            if int(declared) > MAX_BODY:
                await _answer(send, 413, f"a request body is at most {MAX_BODY >> 20} MiB")
                return
        started = False

        # The bundle keeps its name across versions: the browser must ask before reusing it
        # (an ETag makes that a 304), or an old page would talk to a new API.
        extra = (
            [*_HEADERS, (b"cache-control", b"no-cache")]
            if path.startswith("/assets/")
            else _HEADERS
        )

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        received = 0

        async def bounded() -> Message:
            # A chunked body declares no length: it is counted as it arrives.
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY:
                raise _TooLarge
            return message

        try:
            await self.app(scope, bounded, with_headers)
        except _TooLarge:
            if not started:
                await _answer(send, 413, f"a request body is at most {MAX_BODY >> 20} MiB")
        except Exception as exc:
            # Starlette re-raises what its error handler already answered (and logged):
            # stopping it here keeps tracebacks out of the output and the connection open.
            if not started:
                log.error("hone ui: unexpected error answering %s: %r", path, exc)
                await _answer(send, 500, f"the UI server failed: {type(exc).__name__}")

    def _signed_in(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        expected = self.token.encode()
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return True
        # Read leniently: other sites on this host may set cookies Python's parser rejects.
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.cookie_name and hmac.compare_digest(
                value.strip().encode("latin-1"), self.cookie.encode()
            ):
                return True
        return False

    async def _login(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0]
        if self.token is None:
            await _redirect(send, [])
        elif given and hmac.compare_digest(given.encode(), self.token.encode()):
            cookie = f"{self.cookie_name}={self.cookie}; HttpOnly; SameSite=Strict; Path=/"
            if self.secure:
                cookie += "; Secure"
            await _redirect(send, [(b"set-cookie", cookie.encode("latin-1"))])
        else:
            await _page(send, 401, "That token is not this UI's." if given else "Token:")

    def _cross_site(self, headers: dict[str, str], host: str) -> str | None:
        given = headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode("latin-1"), self.csrf.encode()):
            return (
                f"a request that changes something needs the {CSRF_HEADER} header this UI's "
                "pages send (GET /api/session gives it): a request from another site is refused"
            )
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != host and origin != self.public_origin:
            return f"a request from origin {origin!r} is refused: this UI is {host!r}"
        return None


async def _answer(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    import orjson

    body = orjson.dumps({"error": message})
    await _send(send, status, body, b"application/json", extra or [])


async def _page(send: Send, status: int, message: str) -> None:
    body = _LOGIN_FORM.format(message=html.escape(message)).encode()
    await _send(send, status, body, b"text/html; charset=utf-8", [])


async def _redirect(send: Send, extra: list[tuple[bytes, bytes]]) -> None:
    await _send(send, 303, b"", b"text/plain", [(b"location", b"/"), *extra])


async def _send(
    send: Send, status: int, body: bytes, kind: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
        *_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
