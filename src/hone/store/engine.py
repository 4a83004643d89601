"""Engines per store URL: SQLite (WAL, busy timeout) embedded, PostgreSQL when shared."""

from __future__ import annotations

import math
import os
import re
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from hone.errors import ValidationError

__all__ = [
    "TIMEOUT_ENV",
    "display_url",
    "make_engine",
    "parse_store_url",
    "store_timeout",
]

TIMEOUT_ENV = "HONE_STORE_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 1e6
SQLITE_AUTOCHECKPOINT_PAGES = 10_000
POSTGRES_CONNECT_TIMEOUT_S = 5
WRITE_OPTION = "hone_write"
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def store_timeout() -> float:
    """Seconds one store transaction may take (``HONE_STORE_TIMEOUT``, default 60): on
    SQLite the busy timeout, on PostgreSQL the watchdog's deadline."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT_S:
        raise ValidationError(
            f"{TIMEOUT_ENV}={text!r} must be a number of seconds above 0 and at most "
            f"{MAX_TIMEOUT_S:,.0f}"
        )
    return value


def parse_store_url(url: str) -> URL:
    """Parse and normalise a store URL; plain ``postgresql://`` means psycopg 3."""
    if not isinstance(url, str):
        raise ValidationError(f"a store URL is text, got {type(url).__name__}")
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  (a port that is not a number fails here, not later)
    except (ArgumentError, ValueError) as exc:
        raise ValidationError(
            f"store URL {display_url(url)!r} is not a database URL (expected sqlite:///PATH "
            "or postgresql://USER@HOST:PORT/DB)"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValidationError(
            f"store URL {display_url(url)!r}: backend {parsed.get_backend_name()!r} is not "
            "supported; use sqlite:///PATH or postgresql://..."
        )
    return parsed


#: Query parameters of a store URL that are secrets (libpq's names).
_SECRET_PARAMS = frozenset({"password", "sslpassword", "passfile"})


def display_url(url: str | URL) -> str:
    """The URL with any password hidden, for messages and listings."""
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  (a port that is not a number fails here)
        # libpq also takes the password as a query parameter (?password=...).
        hidden = {
            key: "***" if key.lower() in _SECRET_PARAMS else value
            for key, value in parsed.query.items()
        }
        shown = parsed.set(query=hidden).render_as_string(hide_password=True)
        return shown.replace("=%2A%2A%2A", "=***")
    except (ArgumentError, ValueError):
        # Not parseable: hide whatever stands between "user:" and "@" all the same.
        return _PASSWORD.sub(r"\1***@", str(url))


def make_engine(url: str) -> Engine:
    """An engine for ``url``. Connects lazily: creating it touches nothing."""
    parsed = parse_store_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        import psycopg  # noqa: F401  (checked here: a missing driver is a clear error)
    except ImportError:
        raise ValidationError(
            "the store is PostgreSQL but the psycopg driver is not installed: "
            "pip install 'hone[postgres]'"
        ) from None
    connect_args: dict[str, Any] = {
        "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
        # Notice a server or network that is gone within ~25 s of silence.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    # No pool_pre_ping: Database pings itself, under its watchdog, so that a ping on a
    # connection that hangs is bounded too.
    return create_engine(parsed, connect_args=connect_args)


def _sqlite_engine(url: URL) -> Engine:
    busy_timeout = store_timeout()
    # isolation_level=None hands transaction control to the listeners below, so that
    # writers take the lock up front (BEGIN IMMEDIATE) and wait on the busy timeout
    # instead of failing with "database is locked" when a read upgrades to a write.
    engine = create_engine(
        url,
        poolclass=NullPool if url.database in (None, "", ":memory:") else None,
        connect_args={"timeout": busy_timeout, "isolation_level": None},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Writers' own commits checkpoint only past this many pages; processes that
        # log runs checkpoint in the background (Database.checkpoint) long before.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
