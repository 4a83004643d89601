"""Optuna's storage for hone's studies: Optuna's ``JournalStorage`` over a journal kept in
hone's own metadata store (table ``tune_journal``), one journal per study.

Why not Optuna's RDB storage on the same URL: it migrates its own schema with Alembic's
default ``alembic_version`` table, which holds hone's revision (it would refuse the database
or stamp over hone's), and it would add a dozen tables named ``studies``, ``trials`` ... to
hone's schema. A journal is one append-only table that hone's own migrations create, works
on both backends, and costs a few milliseconds a trial (benchmarks/bench_tune.py).

Every process replays the same operations in the same order, so the numbers must be
gapless and committed in order: an append takes the study's lock for its transaction
(SQLite's write transactions are already exclusive; on PostgreSQL a transaction-scoped
advisory lock keyed by the study's name), reads the next number, and inserts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend
from sqlalchemy import func, select, text

from hone.store.database import Database
from hone.store.schema import tune_journal

__all__ = ["StoreJournal", "study_storage"]


class StoreJournal(BaseJournalBackend):
    """One study's journal in hone's store."""

    def __init__(self, db: Database, study: str) -> None:
        self.db, self.study = db, study
        # A signed 64-bit key for pg_advisory_xact_lock, the same in every process.
        digest = hashlib.sha256(f"hone.tune:{study}".encode()).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)
        self._read_to = 0  # the number after the last log read
        # This process's last append, when it came right after what it had read: Optuna
        # reads the journal after every append it makes, and then needs exactly these.
        self._own: tuple[int, list[dict[str, Any]]] | None = None

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        own, self._own = self._own, None
        if own is not None and own[0] == log_number_from:
            # (a log another process appended after these is read next time: as if it had
            # come a moment later)
            self._read_to = log_number_from + len(own[1])
            return own[1]
        with self.db.read() as conn:
            rows = conn.execute(
                select(tune_journal.c.body)
                .where(tune_journal.c.study == self.study, tune_journal.c.seq >= log_number_from)
                .order_by(tune_journal.c.seq)
            ).all()
        self._read_to = log_number_from + len(rows)
        return [json.loads(body) for (body,) in rows]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if not logs:
            return
        first = self._append(logs)
        self._own = (first, [json.loads(json.dumps(log)) for log in logs])
        if first != self._read_to:  # others appended before: read them from the store
            self._own = None

    def _append(self, logs: list[dict[str, Any]]) -> int:
        with self.db.write() as conn:
            if self.db.backend == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._lock_key})
            last = conn.execute(
                select(func.max(tune_journal.c.seq)).where(tune_journal.c.study == self.study)
            ).scalar_one()
            first = 0 if last is None else int(last) + 1
            conn.execute(
                tune_journal.insert(),
                [
                    {"study": self.study, "seq": first + i, "body": json.dumps(log)}
                    for i, log in enumerate(logs)
                ],
            )
        return first


def study_storage(db: Database, study: str) -> JournalStorage:
    """Optuna's storage of one study."""
    return JournalStorage(StoreJournal(db, study))
