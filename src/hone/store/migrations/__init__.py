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

from hone.errors import WorkspaceError
from hone.store.engine import WRITE_OPTION

__all__ = ["current_revision", "head_revision", "known_revisions", "upgrade"]

_HERE = Path(__file__).parent
# One advisory-lock id for hone's migrations (the bytes of "honemigr"), in any database.
_MIGRATION_LOCK_ID = int.from_bytes(b"honemigr", "big") & 0x7FFF_FFFF_FFFF_FFFF


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
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
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
