"""What ``hone serve`` was asked to do, checked before anything starts, and carried to
uvicorn's worker processes as JSON in the environment."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from hone.errors import UserError, ValidationError

__all__ = ["ENV", "TOKEN_ENV", "ServeSettings", "check_listening", "is_loopback"]

ENV = "HONE_SERVE_SETTINGS"
TOKEN_ENV = "HONE_SERVE_TOKEN"
#: A token shorter than this is too easy to guess to guard a server off loopback.
MIN_TOKEN = 16
#: A longer one would not fit the HTTP headers it travels in.
MAX_TOKEN = 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeSettings:
    ref: str  # NAME@ALIAS, NAME@N or NAME (the newest version)
    workspace: str  # the workspace's home folder
    host: str = "127.0.0.1"
    port: int = 8700
    workers: int = 1
    max_batch: int = 64  # rows per onnxruntime call
    max_wait_ms: float = 0.0  # extra wait for a batch to fill; 0: take what is queued
    max_instances: int = 1024  # per request
    max_body_bytes: int = 16 << 20
    token: str | None = None
    record: bool = True
    reload_every_s: float = 2.0
    threads: int = 1  # onnxruntime's threads per worker

    def __post_init__(self) -> None:
        _int("port", self.port, 0, 65535)
        _int("workers", self.workers, 1, 64)
        _int("max batch", self.max_batch, 1, 65536)
        _int("max instances", self.max_instances, 1, 1_000_000)
        _int("max body bytes", self.max_body_bytes, 1024, 1 << 31)
        _int("threads", self.threads, 1, 1024)
        _number("max wait (ms)", self.max_wait_ms, 0.0, 1000.0)
        _number("reload every (s)", self.reload_every_s, 0.1, 86400.0)
        check_listening(self.host, self.token, what="serving", env=TOKEN_ENV)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        body: dict[str, Any] = json.loads(os.environ[ENV])
        return cls(**body)


def check_listening(host: str, token: str | None, *, what: str, env: str) -> None:
    """A host to listen on, and a token good enough to guard it: required off loopback
    (``hone serve`` and ``hone ui`` share these rules)."""
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        raise ValidationError(f"host {host!r}: give an address to listen on")
    if token is not None and (
        not MIN_TOKEN <= len(token) <= MAX_TOKEN
        or not token.isascii()
        or not token.isprintable()
        or any(c.isspace() for c in token)
    ):
        raise ValidationError(
            f"the {what} token must be {MIN_TOKEN} to {MAX_TOKEN} printable ASCII characters, "
            "no spaces (python -c 'import secrets; print(secrets.token_urlsafe())' makes one)"
        )
    if token is None and not is_loopback(host):
        raise UserError(
            f"listening on {host} (not loopback) needs a token: pass --token or set "
            f"{env}; clients then send 'Authorization: Bearer TOKEN'"
        )


def _int(what: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{what} {value!r}: give a whole number from {low} to {high:,}")


def _number(what: str, value: object, low: float, high: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not low <= float(value) <= high:  # type: ignore[arg-type]
        raise ValidationError(f"{what} {value!r}: give a number from {low:g} to {high:g}")
