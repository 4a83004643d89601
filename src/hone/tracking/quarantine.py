"""Records set aside: what the store refused (or could not read), kept with the reason.

One refused record must never block the rest of its journal, other runs, or any command:
the sink writes it here instead of applying it, and carries on. ``hone sync`` and
``hone runs show`` list what was set aside. The record is stored as ASCII JSON (NUL bytes,
lone surrogates and every non-ASCII character escaped) and truncated, so that it can be
stored whatever made the original fail.
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select

from hone.ids import sha256_bytes
from hone.store.database import Database
from hone.store.schema import quarantine
from hone.store.upsert import upsert
from hone.tracking.batch import Rejected

__all__ = [
    "MAX_RECORD_CHARS",
    "Quarantined",
    "forget_quarantined",
    "quarantined_records",
    "write_quarantine",
]

#: Records are kept whole: hone's own are at most ~1 MiB (an event frame's bound) or
#: 10,000 points. Only a foreign record past this is cut, and says so.
MAX_RECORD_CHARS = 8_000_000
_HOST = socket.gethostname()[:250]
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Quarantined:
    """A record that was set aside instead of applied."""

    id: str
    run_id: str | None
    kind: str
    record: str  # ASCII JSON, possibly truncated
    reason: str
    record_time: float | None
    quarantined_at: float
    host: str | None
    segment: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "kind": self.kind,
            "record": self.record,
            "reason": self.reason,
            "record_time": self.record_time,
            "quarantined_at": self.quarantined_at,
            "host": self.host,
            "segment": self.segment,
        }


def as_quarantined(run_id: str | None, rejected: Rejected, segment: str | None) -> Quarantined:
    text = json.dumps(rejected.record, ensure_ascii=True, default=repr, sort_keys=True)
    if len(text) > MAX_RECORD_CHARS:
        text = text[:MAX_RECORD_CHARS] + f"… (cut: {len(text):,} characters in all)"
    record_time = rejected.time
    if not isinstance(record_time, (int, float)) or not math.isfinite(record_time):
        record_time = None
    run = _storable(run_id, 32) if run_id is not None else None
    kind = _storable(rejected.kind, 32)
    reason = _storable(rejected.reason, 4000)
    return Quarantined(
        id=sha256_bytes(f"{run}\0{kind}\0{text}\0{reason}".encode()),
        run_id=run,
        kind=kind,
        record=text,
        reason=reason,
        record_time=record_time,
        quarantined_at=time.time(),
        host=_HOST,
        segment=_storable(segment, 250) if segment else None,
    )


def _storable(text: str, limit: int) -> str:
    """``text`` as every backend stores it (NUL and lone surrogates escaped, as ``\\uXXXX``):
    what is set aside must never be refused in its turn."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)[:limit]


def write_quarantine(conn: Connection, items: Sequence[Quarantined]) -> None:
    """Set ``items`` aside; the same record of the same run is kept once."""
    rows = [
        {
            "id": q.id,
            "run_id": q.run_id,
            "kind": q.kind,
            "record": q.record,
            "reason": q.reason,
            "record_time": q.record_time,
            "quarantined_at": q.quarantined_at,
            "host": q.host,
            "segment": q.segment,
        }
        for q in items
    ]
    upsert(conn, quarantine, rows, keys=["id"])


def quarantined_records(db: Database, run_id: str | None = None) -> list[Quarantined]:
    """What was set aside, for one run or all, oldest first."""
    query = select(quarantine).order_by(quarantine.c.quarantined_at, quarantine.c.id)
    if run_id is not None:
        query = query.where(quarantine.c.run_id == run_id)
    with db.read() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        Quarantined(
            id=r["id"],
            run_id=r["run_id"],
            kind=r["kind"],
            record=r["record"],
            reason=r["reason"],
            record_time=r["record_time"],
            quarantined_at=r["quarantined_at"],
            host=r["host"],
            segment=r["segment"],
        )
        for r in rows
    ]


def forget_quarantined(db: Database, record_id: str) -> None:
    """Drop a set-aside record (it has since been applied)."""
    with db.write() as conn:
        conn.execute(delete(quarantine).where(quarantine.c.id == record_id))
