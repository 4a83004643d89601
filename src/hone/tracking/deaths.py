"""A run whose owning process died: marked ``killed`` when its journal is replayed, ending
when it last trained (which an attached writer, such as a training worker, may tell)."""

from __future__ import annotations

import time

from sqlalchemy import and_, func, select, update

from hone.store.database import Database
from hone.store.schema import latest_metrics, runs
from hone.tracking.entities import RunStatus

__all__ = ["extend_killed", "mark_killed"]


def mark_killed(db: Database, run_id: str, end_time: float) -> bool:
    """Mark a still-running run killed; False if it had already ended (or is unknown),
    or if a newer record (a resume) set its status after ``end_time``. The run ends at
    ``end_time`` or at its newest metric point the store holds, whichever is later: the
    process that owned the run may have died long after it last wrote (a launcher whose
    workers went on logging), and a killed run's duration is how long it trained."""
    with db.write() as conn:
        newest = conn.execute(
            select(func.max(latest_metrics.c.timestamp)).where(latest_metrics.c.run_id == run_id)
        ).scalar()
        ended = end_time
        if newest is not None and end_time < float(newest) <= time.time():
            ended = float(newest)  # (a point's own time, if it is not in the future)
        result = conn.execute(
            update(runs)
            .where(
                and_(
                    runs.c.id == run_id,
                    runs.c.status == RunStatus.RUNNING.value,
                    runs.c.status_time <= end_time,
                )
            )
            .values(status=RunStatus.KILLED.value, end_time=ended, status_time=end_time)
        )
    return bool(result.rowcount)


def extend_killed(db: Database, run_id: str, last_time: float) -> None:
    """A killed run's end moves to ``last_time`` when a process that wrote to it (a
    worker attached to it) lived on after the run was marked killed."""
    with db.write() as conn:
        conn.execute(
            update(runs)
            .where(
                and_(
                    runs.c.id == run_id,
                    runs.c.status == RunStatus.KILLED.value,
                    runs.c.end_time < last_time,
                )
            )
            .values(end_time=last_time)
        )
