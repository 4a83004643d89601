"""INSERT … ON CONFLICT for both backends: idempotent writes are how replay stays safe."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["upsert"]


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] = (),
    where: Callable[[Any], ColumnElement[bool]] | None = None,
) -> None:
    """Insert ``rows``; on a key conflict update ``update`` columns, else skip.

    ``where(excluded)`` may limit the update, given the proposed row's columns.
    """
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table)
    if update:
        final = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: stmt.excluded[name] for name in update},
            where=where(stmt.excluded) if where is not None else None,
        )
    else:
        final = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(final, list(rows))
