"""The guard in front of the UI, in process: what it lets through, what it refuses, and
that an unexpected error becomes one JSON answer, not a traceback and a dropped connection."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from hone.server.security import Guard, _host_of


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _broken(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a bug")


def _get(guard: Guard, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.request(kwargs.pop("method", "GET"), path, **kwargs)

    # On a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("127.0.0.1:8701", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]:8701", "::1"),
        ("127.0.0.1:80@evil.com", ""),
        ("evil.com:80:1", ""),
        ("", ""),
        ("127.0.0.1 .evil", ""),
    ],
)
def test_host_headers_are_read_strictly(header: str, host: str) -> None:
    assert _host_of(header) == host


def test_an_unexpected_error_is_one_json_answer(caplog: pytest.LogCaptureFixture) -> None:
    guard = Guard(_broken, token=None, loopback_only=True)
    with caplog.at_level(logging.ERROR, logger="hone.ui"):
        answer = _get(guard, "/api/runs")
    assert answer.status_code == 500 and answer.json() == {
        "error": "the UI server failed: RuntimeError"
    }
    assert "content-security-policy" in answer.headers
    assert [r.getMessage() for r in caplog.records] == [
        "hone ui: unexpected error answering /api/runs: RuntimeError('a bug')"
    ]


def test_each_token_signs_in_under_its_own_cookie() -> None:
    one = Guard(_ok, token="first-token-0123456789", loopback_only=False)
    two = Guard(_ok, token="other-token-0123456789", loopback_only=False)
    assert one.cookie_name != two.cookie_name and one.cookie != two.cookie
    signed_one = f"{one.cookie_name}={one.cookie}"
    signed_two = f"{two.cookie_name}={two.cookie}"
    both = f"{signed_one}; {signed_two}"
    assert _get(one, "/api/runs", headers={"cookie": both}).status_code == 200
    assert _get(two, "/api/runs", headers={"cookie": both}).status_code == 200
    assert _get(one, "/api/runs", headers={"cookie": signed_two}).status_code == 401
    login = _get(one, "/login", params={"token": "first-token-0123456789"})
    assert login.status_code == 303 and login.headers["set-cookie"].startswith(signed_one)


def test_behind_a_proxy_its_public_origin_is_this_uis_own() -> None:
    guard = Guard(
        _ok,
        token="proxy-token-0123456789",
        loopback_only=True,
        public_url="https://hone.example.com",
    )
    bearer = {"authorization": "Bearer proxy-token-0123456789"}
    assert (
        _get(guard, "/api/runs", headers={**bearer, "host": "hone.example.com"}).status_code == 200
    )
    assert _get(guard, "/api/runs", headers={**bearer, "host": "other.example"}).status_code == 421
    change = {**bearer, "x-hone-csrf": guard.csrf, "content-length": "2"}
    proxied = _get(
        guard,
        "/api/feedback",
        method="POST",
        content=b"{}",
        headers={**change, "origin": "https://hone.example.com"},
    )
    assert proxied.status_code == 200  # Host 127.0.0.1 (not forwarded), Origin the public one
    foreign = _get(
        guard,
        "/api/feedback",
        method="POST",
        content=b"{}",
        headers={**change, "origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    login = _get(guard, "/login", params={"token": "proxy-token-0123456789"})
    assert "; Secure" in login.headers["set-cookie"]


def test_a_websocket_is_closed_at_the_guard() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    guard = Guard(_broken, token=None, loopback_only=True)
    scope = {"type": "websocket", "path": "/api/runs", "headers": []}
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, guard(scope, receive, send)).result()
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_the_sign_in_page_escapes_its_message() -> None:
    from hone.server.security import _page

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _page(send, 401, "<script>alert(1)</script>")).result()
    body = sent[1]["body"].decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>" not in body
    assert sent[0]["status"] == 401


def test_a_length_that_is_no_number_is_a_bad_request() -> None:
    guard = Guard(_ok, token=None, loopback_only=True)
    headers = {"x-hone-csrf": guard.csrf, "content-length": "12abc"}
    answer = _get(guard, "/api/feedback", method="POST", headers=headers)
    assert answer.status_code == 400 and "is not a length" in answer.json()["error"]
