"""The metadata store: one engine, schema checks, and read/write transactions.

Contract:
- Constructing a ``Database`` touches nothing; the first transaction connects.
- ``write()`` is one transaction; on SQLite it takes the write lock up front and waits up to
  the busy timeout, so any number of processes may write concurrently.
- Every transaction ends within ``HONE_STORE_TIMEOUT`` seconds (60 by default): on
  PostgreSQL a watchdog cuts off a connection that hangs (``store/watchdog.py``), then
  ``StoreUnavailableError`` says so. SQLite waits on its busy timeout, which is as long.
- Every transaction first checks (once per object) that the schema is at this hone's head
  revision, and raises ``WorkspaceError`` naming the command that fixes it otherwise.
- Driver errors are translated by what they mean (``store/translate.py``): refused values
  and queries as ``RejectedError``, no answer as ``StoreUnavailableError``, a full disk as
  ``DiskFullError``, a damaged database as ``WorkspaceError``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from hone.errors import HoneError, StoreUnavailableError, ValidationError, WorkspaceError
from hone.store.engine import WRITE_OPTION, display_url, make_engine, parse_store_url
from hone.store.migrations import current_revision, head_revision, known_revisions
from hone.store.translate import translate_store_error
from hone.store.watchdog import watchdog

__all__ = ["TIMEOUT_ENV", "Database", "database_for", "dispose_databases", "store_timeout"]

CHECKPOINT_EVERY_S = 5.0
CHECKPOINT_AFTER_WRITES = 200
TIMEOUT_ENV = "HONE_STORE_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0


def store_timeout() -> float:
    """Seconds one store transaction may take (``HONE_STORE_TIMEOUT``, default 60)."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1e6:
        raise ValidationError(f"{TIMEOUT_ENV}={text!r} must be a number of seconds above 0")
    return value


class Database:
    """A handle on one metadata store, selected by URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._parsed = parse_store_url(url)
        self._engine: Engine | None = None
        self._schema_checked = False
        self._lock = threading.Lock()
        self._writes_since_checkpoint = 0
        self._checkpointed_at = time.monotonic()

    @property
    def backend(self) -> str:
        return self._parsed.get_backend_name()

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = make_engine(self.url)
            return self._engine

    def display_url(self) -> str:
        return display_url(self._parsed)

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite store, else None."""
        if self.backend != "sqlite" or self._parsed.database in (None, "", ":memory:"):
            return None
        return Path(str(self._parsed.database))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        self.check_schema()
        with self._transaction(write=False) as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block exits cleanly."""
        self.check_schema()
        with self._transaction(write=True) as conn:
            yield conn
        self._writes_since_checkpoint += 1

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """A transaction that ends within ``store_timeout()`` seconds, or fails cleanly.

        On PostgreSQL the connection is checked (a ping, under the watchdog) before use:
        a pooled connection that went stale is replaced, one that hangs is cut off.
        """
        timeout = store_timeout()
        deadline = time.monotonic() + timeout
        guard: int | None = None
        try:
            with self._translate():
                conn = self._checked_connection(write, deadline, timeout)
                with conn:
                    guard = self._watch(conn, deadline)
                    with conn.begin():
                        yield conn
                    if guard is not None and watchdog.disarm(guard):
                        conn.invalidate()  # cut off just after it finished: not reusable
                    guard = None
        except HoneError:
            if guard is not None and watchdog.disarm(guard):
                raise self._timed_out(timeout) from None
            raise
        finally:
            if guard is not None:
                watchdog.disarm(guard)

    def _timed_out(self, timeout: float) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the metadata store at {self.display_url()} did not answer within {timeout:g} s "
            f"(set {TIMEOUT_ENV} to wait longer)"
        )

    def _checked_connection(self, write: bool, deadline: float, timeout: float) -> Connection:
        options = {WRITE_OPTION: True} if write else {}
        conn = self.engine.connect().execution_options(**options)
        if self.backend != "postgresql":
            return conn
        guard = self._watch(conn, deadline)
        try:
            conn.exec_driver_sql("SELECT 1")
            conn.rollback()
        except DBAPIError as exc:
            fired = guard is not None and watchdog.disarm(guard)
            guard = None
            conn.close()
            if fired:
                raise self._timed_out(timeout) from exc
            if not exc.connection_invalidated:
                raise
            # The pooled connection was stale (the server restarted, say): a fresh one.
            return self.engine.connect().execution_options(**options)
        finally:
            if guard is not None:
                watchdog.disarm(guard)
        return conn

    def _watch(self, conn: Connection, deadline: float) -> int | None:
        if self.backend != "postgresql":
            return None
        raw = conn.connection.dbapi_connection
        fileno = getattr(raw, "fileno", None)
        return watchdog.arm(fileno(), deadline) if callable(fileno) else None

    def checkpoint(self) -> None:
        """Move committed SQLite WAL pages into the database file, now and then.

        PASSIVE: never waits on or blocks writers. Called from the tracking flusher's
        thread, so a committing run does not pay for checkpoints on its own path; at most
        every ``CHECKPOINT_EVERY_S`` unless ``CHECKPOINT_AFTER_WRITES`` transactions piled
        up, so that a training loop sharing the cores is disturbed as little as possible.
        """
        if self.backend != "sqlite" or not self._writes_since_checkpoint:
            return
        now = time.monotonic()
        if (
            now - self._checkpointed_at < CHECKPOINT_EVERY_S
            and self._writes_since_checkpoint < CHECKPOINT_AFTER_WRITES
        ):
            return
        self._checkpointed_at = now
        self._writes_since_checkpoint = 0
        with self._translate(), self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def revision(self) -> str | None:
        """The schema revision the store is at (None if it has no hone schema)."""
        path = self.sqlite_path()
        if path is not None and not path.is_file():
            return None
        with self._translate(), self.engine.connect() as conn:
            return current_revision(conn)

    def check_schema(self) -> None:
        """Raise ``WorkspaceError`` unless the store's schema is this hone's head revision."""
        if self._schema_checked:
            return
        path = self.sqlite_path()
        if path is not None and not path.is_file():
            raise WorkspaceError(
                f"no hone database at {path}; run `hone init` to create the workspace"
            )
        current = self.revision()
        head = head_revision()
        if current is None:
            raise WorkspaceError(
                f"the store at {self.display_url()} has no hone schema; run `hone init` "
                "(or `hone db upgrade`) first"
            )
        if current not in known_revisions():
            raise WorkspaceError(
                f"the store at {self.display_url()} is at schema revision {current}, which "
                "this hone does not know: a newer hone wrote it; upgrade hone"
            )
        if current != head:
            raise WorkspaceError(
                f"the store at {self.display_url()} is at schema revision {current}, this "
                f"hone needs {head}; run `hone db upgrade` (back up the database first)"
            )
        self._schema_checked = True

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except HoneError:
            raise
        except Exception as exc:
            translated = translate_store_error(exc, self.display_url())
            if translated is None:
                raise
            raise translated from exc


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def database_for(url: str) -> Database:
    """The process's ``Database`` for ``url``: one engine per store, shared by every layer."""
    with _databases_lock:
        db = _databases.get(url)
        if db is None:
            db = _databases[url] = Database(url)
        return db


def dispose_databases() -> None:
    """Close every shared engine (tests, and programs that switch workspaces)."""
    with _databases_lock:
        dbs = list(_databases.values())
        _databases.clear()
    for db in dbs:
        db.dispose()
