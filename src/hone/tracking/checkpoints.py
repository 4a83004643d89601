"""The parameter library's index: which training states a run saved, at which step, where
their bytes are (two blobs each), and the metrics at that step. Retention keeps a run's
last K and best K checkpoints; a blob goes only when no record refers to it any more.

Written straight to the store, not through the run's journal: a checkpoint is rare, and
a restarted worker must find it at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select

from hone.blobs import BlobStore
from hone.errors import HoneError, NotFoundError
from hone.store.database import Database
from hone.store.schema import artifacts, checkpoints, model_exports, model_versions, predictions
from hone.store.upsert import upsert

__all__ = [
    "Checkpoint",
    "collect_unreferenced",
    "latest_checkpoint",
    "list_checkpoints",
    "record_checkpoint",
    "retain",
]


@dataclass(frozen=True)
class Checkpoint:
    run_id: str
    step: int
    epoch: int
    weights: str  # blob digest: safetensors
    state: str  # blob digest: optimizer, scheduler, RNG, position
    size: int
    metrics: dict[str, float]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "step": self.step,
            "epoch": self.epoch,
            "weights": self.weights,
            "state": self.state,
            "size": self.size,
            "metrics": self.metrics,
            "created_at": self.created_at,
        }


def record_checkpoint(
    db: Database,
    run_id: str,
    step: int,
    epoch: int,
    weights: str,
    state: str,
    size: int,
    metrics: Mapping[str, float],
) -> Checkpoint:
    """Index a saved state (its blobs are stored already). Saving a step again (a restarted
    job redoing it) replaces the record."""
    finite = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
    row = {
        "run_id": run_id,
        "step": step,
        "epoch": epoch,
        "weights": weights,
        "state": state,
        "size": size,
        "metrics": json.dumps(finite, sort_keys=True),
        "created_at": time.time(),
    }
    with db.write() as conn:
        upsert(
            conn,
            checkpoints,
            [row],
            keys=("run_id", "step"),
            update=("epoch", "weights", "state", "size", "metrics", "created_at"),
        )
    return _from_row(row)


def list_checkpoints(db: Database, run_id: str) -> list[Checkpoint]:
    """A run's checkpoints, oldest step first."""
    with db.read() as conn:
        rows = conn.execute(
            select(checkpoints).where(checkpoints.c.run_id == run_id).order_by(checkpoints.c.step)
        ).all()
    return [_from_row(row._asdict()) for row in rows]


def latest_checkpoint(db: Database, run_id: str) -> Checkpoint:
    found = list_checkpoints(db, run_id)
    if not found:
        raise NotFoundError(f"run {run_id} has no checkpoints")
    return found[-1]


def retain(
    db: Database,
    blobs: BlobStore,
    run_id: str,
    *,
    keep_last: int,
    keep_best: int,
    metric: str,
    mode: str,
) -> list[Checkpoint]:
    """Drop a run's checkpoints that are neither among its last ``keep_last`` nor its best
    ``keep_best`` by ``metric`` (``mode`` min or max; checkpoints without the metric are
    never best), and the blobs no other record refers to. Returns what was dropped."""
    found = list_checkpoints(db, run_id)
    keep = {c.step for c in found[-keep_last:]} if keep_last > 0 else set()
    scored = [c for c in found if metric in c.metrics]
    scored.sort(key=lambda c: (c.metrics[metric] if mode == "min" else -c.metrics[metric], -c.step))
    keep |= {c.step for c in scored[:keep_best]}
    dropped = [c for c in found if c.step not in keep]
    if not dropped:
        return []
    with db.write() as conn:
        conn.execute(
            delete(checkpoints).where(
                checkpoints.c.run_id == run_id,
                checkpoints.c.step.in_([c.step for c in dropped]),
            )
        )
    collect_unreferenced(db, blobs, {d for c in dropped for d in (c.weights, c.state)})
    return dropped


def collect_unreferenced(db: Database, blobs: BlobStore, digests: set[str]) -> None:
    """Delete the blobs among ``digests`` that no checkpoint, artifact, registered model
    version or exported file refers to."""
    if not digests:
        return
    wanted = sorted(digests)
    # One write transaction around the check and the deletes: a checkpoint recorded
    # meanwhile (by another run, with identical bytes) waits for it, then finds its blob
    # gone and puts it again (save_checkpoint checks after recording).
    with db.write() as conn:
        if db.backend == "postgresql":  # SQLite's write transactions are exclusive already
            conn.exec_driver_sql("LOCK TABLE checkpoints IN SHARE ROW EXCLUSIVE MODE")
        used = conn.execute(
            select(checkpoints.c.weights, checkpoints.c.state).where(
                or_(checkpoints.c.weights.in_(wanted), checkpoints.c.state.in_(wanted))
            )
        ).all()
        referenced = {d for row in used for d in row}
        for column in (
            artifacts.c.digest,
            model_versions.c.weights,
            model_exports.c.digest,
            predictions.c.input_digest,
        ):
            referenced |= set(conn.execute(select(column).where(column.in_(wanted))).scalars())
        for digest in wanted:
            if digest in referenced:
                continue
            with contextlib.suppress(HoneError):  # one that cannot go now is an orphan
                blobs.delete(digest)


def _from_row(row: Mapping[str, Any]) -> Checkpoint:
    try:
        metrics = json.loads(row["metrics"])
    except ValueError:
        metrics = {}
    return Checkpoint(
        run_id=row["run_id"],
        step=int(row["step"]),
        epoch=int(row["epoch"]),
        weights=row["weights"],
        state=row["state"],
        size=int(row["size"]),
        metrics=metrics if isinstance(metrics, dict) else {},
        created_at=float(row["created_at"]),
    )
