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

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError

from hone.errors import HoneError, StoreUnavailableError, WorkspaceError
from hone.store.engine import (
    TIMEOUT_ENV,
    WRITE_OPTION,
    display_url,
    make_engine,
    parse_store_url,
    store_timeout,
)
from hone.store.migrations import current_revision, head_revision, known_revisions
from hone.store.translate import translate_store_error
from hone.store.watchdog import watchdog

__all__ = [
    "TIMEOUT_ENV",
    "Database",
    "database_for",
    "dispose_databases",
    "dispose_databases_in_child",
    "store_timeout",
]

CHECKPOINT_EVERY_S = 5.0
CHECKPOINT_AFTER_WRITES = 200


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
                if self.backend == "postgresql":
                    # insert=True: before the dialect's own first-connect queries.
                    event.listen(self._engine, "first_connect", _watch_connection, insert=True)
                    event.listen(self._engine, "connect", _watch_connection)
                    event.listen(self._engine, "checkout", _watch_connection)
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
        """A transaction that ends within ``store_timeout()`` seconds, or fails cleanly."""
        with self._bounded(), self._translate():
            conn = self._checked_connection(write)
            with conn, conn.begin():
                yield conn

    @contextmanager
    def _bounded(self) -> Iterator[None]:
        """Everything in the block ends by the deadline: on PostgreSQL every connection it
        touches — a new one's setup queries, a pooled one's ping, every statement — is
        watched (the engine's pool events arm the watchdog for this thread's deadline)."""
        timeout = store_timeout()
        outer = getattr(_local, "guard", None)
        if outer is not None or self.backend != "postgresql":
            yield  # SQLite waits on its busy timeout, which is the same bound
            return
        guard = _Guard(time.monotonic() + timeout)
        _local.guard = guard
        try:
            yield
        except HoneError:
            if guard.release():
                raise StoreUnavailableError(
                    f"the metadata store at {self.display_url()} did not answer within "
                    f"{timeout:g} s (set {TIMEOUT_ENV} to wait longer)"
                ) from None
            raise
        finally:
            _local.guard = None
            guard.release()

    def _checked_connection(self, write: bool) -> Connection:
        """A connection; on PostgreSQL pinged first (in place of the pool's pre-ping, which
        the watchdog could not bound), and replaced once if it went stale."""
        options = {WRITE_OPTION: True} if write else {}
        conn = self.engine.connect().execution_options(**options)
        if self.backend != "postgresql":
            return conn
        try:
            conn.exec_driver_sql("SELECT 1")
            conn.rollback()
        except DBAPIError as exc:
            conn.close()
            guard = getattr(_local, "guard", None)
            if not exc.connection_invalidated or (guard is not None and guard.fired()):
                raise
            # The pooled connection was stale (the server restarted, say): a fresh one.
            return self.engine.connect().execution_options(**options)
        return conn

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
        with self._bounded(), self._translate(), self.engine.connect() as conn:
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


_local = threading.local()


class _Guard:
    """This thread's deadline, and the connections the watchdog watches until it."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.tokens: dict[int, int] = {}  # fd -> watchdog token
        self._fired = False

    def watch(self, fd: int) -> None:
        if fd not in self.tokens:
            self.tokens[fd] = watchdog.arm(fd, self.deadline)

    def fired(self) -> bool:
        return self._fired or any(watchdog.fired(t) for t in self.tokens.values())

    def release(self) -> bool:
        """Stop watching; True if the deadline passed and a connection was cut off."""
        for token in self.tokens.values():
            self._fired = watchdog.disarm(token) or self._fired
        self.tokens.clear()
        return self._fired


def _watch_connection(dbapi_connection: Any, *_: Any) -> None:
    guard: _Guard | None = getattr(_local, "guard", None)
    fileno = getattr(dbapi_connection, "fileno", None)
    if guard is not None and callable(fileno):
        guard.watch(fileno())


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


def dispose_databases_in_child() -> None:
    """In a forked child: drop the parent's pooled connections without closing them (they
    are the parent's sockets); the child connects afresh."""
    global _databases_lock
    _databases_lock = threading.Lock()
    dbs = list(_databases.values())
    _databases.clear()
    for db in dbs:
        if db._engine is not None:
            db._engine.dispose(close=False)
