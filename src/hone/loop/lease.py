"""One feedback loop run per model at a time, on any number of machines.

A lease is a row of ``loop_leases`` keyed by the model: taken by inserting it, renewed every
``RENEW_S`` by a thread of its holder, given back by deleting it. A second loop run finds
the row and refuses, naming who holds it since when; a lease not renewed for ``STALE_S``
belongs to a process that died, and the next run takes it over.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from sqlalchemy import delete, insert, select, update

from hone.errors import ConflictError, HoneError
from hone.ids import new_id
from hone.registry.versions import lock_model, who
from hone.store.database import Database
from hone.store.schema import loop_leases

__all__ = ["RENEW_S", "STALE_S", "Lease", "held"]

RENEW_S = 10.0
STALE_S = 120.0


class Lease:
    def __init__(self, db: Database, model: str) -> None:
        self.db, self.model = db, model
        self.holder = new_id()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self) -> None:
        now = time.time()
        with self.db.write() as conn:
            lock_model(conn, self.db, f"loop:{self.model}")
            row = conn.execute(
                select(loop_leases).where(loop_leases.c.model == self.model)
            ).one_or_none()
            if row is not None and now - float(row.renewed_at) < STALE_S:
                since = time.strftime("%H:%M:%S", time.gmtime(float(row.started_at)))
                raise ConflictError(
                    f"a loop run of {self.model} is in progress (by {row.who}, since {since} "
                    f"UTC{', run ' + row.run_id if row.run_id else ''}): wait for it to end"
                )
            if row is not None:
                conn.execute(delete(loop_leases).where(loop_leases.c.model == self.model))
            conn.execute(
                insert(loop_leases).values(
                    model=self.model,
                    holder=self.holder,
                    run_id=None,
                    who=who(),
                    started_at=now,
                    renewed_at=now,
                )
            )
        self._thread = threading.Thread(target=self._renew, name="hone-loop-lease", daemon=True)
        self._thread.start()

    def name_run(self, run_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(loop_leases)
                .where(loop_leases.c.model == self.model, loop_leases.c.holder == self.holder)
                .values(run_id=run_id)
            )

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_S):
            with contextlib.suppress(HoneError, OSError), self.db.write() as conn:
                conn.execute(
                    update(loop_leases)
                    .where(
                        loop_leases.c.model == self.model,
                        loop_leases.c.holder == self.holder,
                    )
                    .values(renewed_at=time.time())
                )

    def give_back(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(HoneError, OSError), self.db.write() as conn:
            conn.execute(
                delete(loop_leases).where(
                    loop_leases.c.model == self.model, loop_leases.c.holder == self.holder
                )
            )


@contextlib.contextmanager
def held(db: Database, model: str) -> Iterator[Lease]:
    lease = Lease(db, model)
    lease.take()
    try:
        yield lease
    finally:
        lease.give_back()
