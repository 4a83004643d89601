"""INSERT … ON CONFLICT for both backends: idempotent writes are how replay stays safe."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

__all__ = ["upsert"]

_compiled: dict[tuple[Any, ...], tuple[str, tuple[str, ...] | None]] = {}
_lock = threading.Lock()


def _statement(
    dialect: str,
    table: Table,
    keys: Sequence[str],
    update: Sequence[str],
    newer: tuple[str, ...],
) -> Insert:
    """On a conflict over ``keys``, update the ``update`` columns (only where the stored
    ``newer`` columns are not greater than the proposed ones, compared in order, if given),
    else do nothing."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # inline(): no implicit RETURNING of a generated key, which costs per row.
    stmt = insert(table).inline()
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    where = None
    if len(newer) == 1:
        where = table.c[newer[0]] <= stmt.excluded[newer[0]]
    elif newer:
        stored = tuple_(*(table.c[name] for name in newer))
        where = stored <= tuple_(*(stmt.excluded[name] for name in newer))
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: stmt.excluded[name] for name in update},
        where=where,
    )


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] = (),
    newer: str | Sequence[str] = (),
) -> int:
    """Insert ``rows``; on a key conflict update ``update`` columns, else skip them.
    Returns how many rows were inserted or updated.

    ``newer`` names the column(s) that order writes: a conflicting row is updated only if
    its stored values there are not greater (in order) than the proposed ones, so the
    newest write wins whatever order rows arrive in.

    Rows must all have the same keys, and only plain values (text, numbers, None). The
    statement is built and compiled once per shape (building ``excluded`` alone costs
    ~0.2 ms) and executed on the driver directly: a Core execution costs ~70 us, most of a
    short run's end when it takes five of them.
    """
    if not rows:
        return 0
    order_by = (newer,) if isinstance(newer, str) else tuple(newer)
    columns = tuple(rows[0])
    cache_key = (conn.dialect.name, table.name, tuple(keys), tuple(update), order_by, columns)
    with _lock:
        compiled = _compiled.get(cache_key)
    if compiled is None:
        stmt = _statement(conn.dialect.name, table, keys, update, order_by)
        sql = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
        assert "RETURNING" not in str(sql), "upsert() never returns rows"
        order = tuple(sql.positiontup or ()) if sql.positional else None
        compiled = (str(sql), order)
        with _lock:
            _compiled[cache_key] = compiled
    text, order = compiled
    params: Sequence[Any] = (
        [tuple(row[name] for name in order) for row in rows] if order is not None else rows
    )
    return int(conn.exec_driver_sql(text, params).rowcount)
