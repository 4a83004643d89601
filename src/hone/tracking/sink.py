"""Applies decoded journal records to the store, idempotently.

Every write is keyed — runs by id, params/tags by (run, key), metrics by (run, key, step) —
so replaying a journal that was already (partly) applied changes nothing. Params keep their
first value; tags, metrics and status take the latest.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, select, update

from hone.ids import new_id
from hone.store.database import Database
from hone.store.schema import artifacts, experiments, latest_metrics, metrics, params, runs, tags
from hone.store.upsert import upsert
from hone.tracking.entities import RunStatus
from hone.tracking.records import Event, MetricPoint

__all__ = ["Batch", "StoreSink"]


@dataclass
class Batch:
    """Records of one run's segment, in journal order, split by what they touch."""

    run_id: str
    starts: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    last_timestamp: float | None = None

    def add(self, record: MetricPoint | Event) -> None:
        if isinstance(record, MetricPoint):
            self.metrics.append(record)
            self.last_timestamp = record.timestamp
            return
        data = record.data
        self.last_timestamp = data.get("time", self.last_timestamp)
        if record.kind == "start":
            self.starts.append(data)
        elif record.kind == "params":
            for key, value in data["values"].items():
                self.params.setdefault(key, value)
        elif record.kind == "tags":
            self.tags.update(data["values"])
        elif record.kind == "artifact":
            self.artifacts.append(data)
        elif record.kind in ("end", "resume"):
            self.statuses.append({"kind": record.kind, **data})

    def __len__(self) -> int:
        return (
            len(self.starts)
            + len(self.params)
            + len(self.tags)
            + len(self.artifacts)
            + len(self.metrics)
            + len(self.statuses)
        )


class StoreSink:
    """Writes batches to one metadata store."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._experiment_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def apply(self, batch: Batch) -> None:
        if not len(batch):
            return
        with self.db.write() as conn:
            for start in batch.starts:
                self._create_run(conn, start)
            self._write_values(conn, batch)
            self._write_metrics(conn, batch.run_id, batch.metrics)
            for status in batch.statuses:
                self._set_status(conn, batch.run_id, status)

    def mark_killed(self, run_id: str, end_time: float) -> bool:
        """Mark a still-running run killed; False if it had already ended (or is unknown)."""
        with self.db.write() as conn:
            result = conn.execute(
                update(runs)
                .where(and_(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value))
                .values(status=RunStatus.KILLED.value, end_time=end_time)
            )
        return bool(result.rowcount)

    def _experiment_id(self, conn: Connection, name: str, created_at: float) -> str:
        with self._lock:
            cached = self._experiment_ids.get(name)
        if cached is not None:
            return cached
        upsert(
            conn,
            experiments,
            [{"id": new_id(), "name": name, "created_at": created_at}],
            keys=["name"],
        )
        found = conn.execute(
            select(experiments.c.id).where(experiments.c.name == name)
        ).scalar_one()
        with self._lock:
            self._experiment_ids[name] = found
        return str(found)

    def _create_run(self, conn: Connection, start: dict[str, Any]) -> None:
        row = {
            "id": start["run_id"],
            "experiment_id": self._experiment_id(conn, start["experiment"], start["time"]),
            "name": start["name"],
            "status": RunStatus.RUNNING.value,
            "start_time": start["time"],
            "end_time": None,
            "parent_run_id": start.get("parent_run_id"),
            "git_commit": start.get("git_commit"),
            "git_dirty": start.get("git_dirty"),
            "host": start.get("host"),
            "user": start.get("user"),
            "source": start.get("source"),
            "environment": start.get("environment"),
        }
        upsert(conn, runs, [row], keys=["id"])

    @staticmethod
    def _write_values(conn: Connection, batch: Batch) -> None:
        run_id = batch.run_id
        upsert(
            conn,
            params,
            [{"run_id": run_id, "key": k, "value": v} for k, v in batch.params.items()],
            keys=["run_id", "key"],
        )
        upsert(
            conn,
            tags,
            [{"run_id": run_id, "key": k, "value": v} for k, v in batch.tags.items()],
            keys=["run_id", "key"],
            update=["value"],
        )
        upsert(
            conn,
            artifacts,
            [
                {
                    "run_id": run_id,
                    "path": a["path"],
                    "digest": a["digest"],
                    "size": a["size"],
                    "created_at": a["time"],
                }
                for a in batch.artifacts
            ],
            keys=["run_id", "path"],
            update=["digest", "size", "created_at"],
        )

    @staticmethod
    def _write_metrics(conn: Connection, run_id: str, points: Sequence[MetricPoint]) -> None:
        if not points:
            return
        # NaN goes in as NULL: SQLite cannot hold NaN, and NULL reads back as NaN.
        rows: list[dict[str, Any]] = [
            {
                "run_id": run_id,
                "key": p.key,
                "step": p.step,
                "value": None if p.value != p.value else p.value,
                "timestamp": p.timestamp,
            }
            for p in points
        ]
        upsert(conn, metrics, rows, keys=["run_id", "key", "step"], update=["value", "timestamp"])
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            seen = latest.get(row["key"])
            if seen is None or row["step"] >= seen["step"]:
                latest[row["key"]] = row
        upsert(
            conn,
            latest_metrics,
            list(latest.values()),
            keys=["run_id", "key"],
            update=["step", "value", "timestamp"],
            where=lambda proposed: latest_metrics.c.step <= proposed.step,
        )

    @staticmethod
    def _set_status(conn: Connection, run_id: str, status: dict[str, Any]) -> None:
        if status["kind"] == "resume":
            values: dict[str, Any] = {"status": RunStatus.RUNNING.value, "end_time": None}
        else:
            values = {"status": status["status"], "end_time": status["time"]}
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
