"""Schema migrations (Alembic), shipped inside the package and run only on request.

Migrating is serialized across processes and machines: on PostgreSQL by a transaction-level
advisory lock taken before the current revision is read, on SQLite by taking the write lock
up front (``BEGIN IMMEDIATE``). Two ``hone init`` at once on one store therefore never both
create the tables: the second waits, then finds the schema current and does nothing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from hone.errors import StoreUnavailableError, WorkspaceError
from hone.store.engine import WRITE_OPTION

__all__ = [
    "MIGRATION_LOCK_ID",
    "MIGRATION_LOCK_TIMEOUT_S",
    "current_revision",
    "head_revision",
    "known_revisions",
    "upgrade",
]

_HERE = Path(__file__).parent
# One advisory-lock id for hone's migrations (the bytes of "honemigr"), in any database.
MIGRATION_LOCK_ID = int.from_bytes(b"honemigr", "big") & 0x7FFF_FFFF_FFFF_FFFF
# How long a migration waits for another one (or for a table another process holds) before
# it gives up with a clear error, rather than hang behind a stuck process.
MIGRATION_LOCK_TIMEOUT_S = 120.0


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def head_revision() -> str:
    """The newest revision this hone knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


@cache
def known_revisions() -> frozenset[str]:
    """Every revision this hone ships."""
    script = ScriptDirectory.from_config(_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


def current_revision(conn: Connection) -> str | None:
    """The revision a database is at, or None if it has no hone schema."""
    return MigrationContext.configure(conn).get_current_revision()


def _lock_migrations(conn: Connection, where: str) -> None:
    timeout_ms = max(1, int(MIGRATION_LOCK_TIMEOUT_S * 1000))
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {timeout_ms}")
    try:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        raise StoreUnavailableError(
            f"another process has been migrating the store at {where} for over "
            f"{MIGRATION_LOCK_TIMEOUT_S:g} s; try again once it is done"
        ) from exc


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate ``engine``'s database to ``revision``; returns (before, after).

    Raises ``WorkspaceError`` if the database is at a revision this hone does not know
    (a newer hone wrote it): nothing is changed then.
    """
    where = engine.url.render_as_string(hide_password=True)
    with (
        engine.connect().execution_options(**{WRITE_OPTION: True}) as conn,
        conn.begin(),
    ):
        if conn.dialect.name == "postgresql":
            _lock_migrations(conn, where)
        try:
            before = current_revision(conn)
            if before is not None and before not in known_revisions():
                raise WorkspaceError(
                    f"the store at {where} is at schema revision {before!r}, which this hone "
                    f"does not know (its newest is {head_revision()}): a newer hone wrote it; "
                    "upgrade hone (pip install -U hone) rather than the store"
                )
            command.upgrade(_config(conn), revision)
            after = current_revision(conn)
        except CommandError as exc:  # e.g. several rows in alembic_version
            raise WorkspaceError(f"cannot migrate the store at {where}: {exc}") from exc
    return before, after
