"""Applies journal records to the store, idempotently.

Every write is keyed — runs by id, params/tags by (run, key), points by (series, step) —
so replaying a journal that was already (partly) applied changes nothing. Params keep their
first value; tags, metrics and status take the latest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hone.ids import new_id
from hone.store.database import Database
from hone.store.schema import (
    artifacts,
    experiments,
    latest_metrics,
    metric_series,
    metrics,
    params,
    run_inputs,
    runs,
    tags,
)
from hone.store.upsert import upsert
from hone.tracking.entities import RunStatus
from hone.tracking.records import Event, MetricPoint

__all__ = ["Batch", "PointRow", "StoreSink", "point_row"]

#: A metric point as a run queues it under its key: (step, value, timestamp); NaN is None.
PointRow = tuple[int, float | None, float]
_POINT_COLUMNS = ("step", "value", "timestamp")
_SERIES_MARK = "__hone_series_id__"
#: New series are created this many per statement (two parameters each).
_SERIES_CHUNK = 200
#: Up to this many points a batch goes in one statement for all keys.
_SMALL_BATCH = 2000


def point_row(point: MetricPoint) -> PointRow:
    value = point.value
    return (point.step, None if value != value else value, point.timestamp)


@dataclass
class Batch:
    """Records of one run's segment, in journal order, split by what they touch."""

    run_id: str
    starts: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, list[PointRow]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    last_timestamp: float | None = None

    def add(self, record: MetricPoint | Event) -> None:
        if isinstance(record, MetricPoint):
            self.metrics.setdefault(record.key, []).append(point_row(record))
            self.last_timestamp = record.timestamp
            return
        self.add_event(record)

    def add_event(self, record: Event) -> None:
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
        elif record.kind == "input":
            self.inputs.append(data)
        elif record.kind in ("end", "resume"):
            self.statuses.append({"kind": record.kind, **data})

    def __len__(self) -> int:
        return (
            len(self.starts)
            + len(self.params)
            + len(self.tags)
            + len(self.artifacts)
            + len(self.inputs)
            + sum(map(len, self.metrics.values()))
            + len(self.statuses)
        )


def _step_of(row: PointRow) -> int:
    return row[0]


class StoreSink:
    """Writes batches to one metadata store. Safe to share between threads."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Ids the store has committed; ids from a transaction enter only after its commit.
        self._experiment_ids: dict[str, str] = {}
        self._series_ids: dict[tuple[str, str], int] = {}
        self._point_sql: dict[str, tuple[str, bool]] = {}
        self._series_sql: dict[tuple[str, int], tuple[str, tuple[str, ...] | None]] = {}
        self._lock = threading.Lock()

    def apply(self, batch: Batch) -> None:
        if not len(batch):
            return
        fresh_experiments: dict[str, str] = {}
        fresh_series: dict[tuple[str, str], int] = {}
        statuses = batch.statuses
        final: dict[str, Any] | None = None
        if batch.starts and statuses and statuses[-1]["kind"] == "end":
            # A run that starts and ends within one batch is written with its outcome.
            final, statuses = statuses[-1], []
        with self.db.write() as conn:
            for start in batch.starts:
                self._create_run(conn, start, fresh_experiments, final)
            self._write_values(conn, batch)
            self._write_metrics(conn, batch.run_id, batch.metrics, fresh_series)
            for status in statuses:
                self._set_status(conn, batch.run_id, status)
        with self._lock:
            self._experiment_ids.update(fresh_experiments)
            self._series_ids.update(fresh_series)

    def mark_killed(self, run_id: str, end_time: float) -> bool:
        """Mark a still-running run killed; False if it had already ended (or is unknown)."""
        with self.db.write() as conn:
            result = conn.execute(
                update(runs)
                .where(and_(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value))
                .values(status=RunStatus.KILLED.value, end_time=end_time)
            )
        return bool(result.rowcount)

    def _create_run(
        self,
        conn: Connection,
        start: dict[str, Any],
        fresh: dict[str, str],
        final: dict[str, Any] | None,
    ) -> None:
        name = start["experiment"]
        with self._lock:
            experiment_id = self._experiment_ids.get(name) or fresh.get(name)
        if experiment_id is None:
            row = {"id": new_id(), "name": name, "created_at": start["time"]}
            upsert(conn, experiments, [row], keys=["name"])
            experiment_id = conn.execute(
                select(experiments.c.id).where(experiments.c.name == name)
            ).scalar_one()
            fresh[name] = experiment_id
        row = {
            "id": start["run_id"],
            "experiment_id": experiment_id,
            "name": start["name"],
            "status": final["status"] if final else RunStatus.RUNNING.value,
            "start_time": start["time"],
            "end_time": final["time"] if final else None,
            "parent_run_id": start.get("parent_run_id"),
            "git_commit": start.get("git_commit"),
            "git_dirty": start.get("git_dirty"),
            "host": start.get("host"),
            "user": start.get("user"),
            "source": start.get("source"),
            "environment": start.get("environment"),
        }
        if final is None:
            upsert(conn, runs, [row], keys=["id"])
        else:  # a replay may find the row already there, running: it takes the outcome
            upsert(conn, runs, [row], keys=["id"], update=["status", "end_time"])

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
        upsert(
            conn,
            run_inputs,
            [
                {
                    "run_id": run_id,
                    "version_id": i["version_id"],
                    "dataset": i["dataset"],
                    "split": i.get("split") or "",
                }
                for i in batch.inputs
            ],
            keys=["run_id", "version_id", "split"],
        )

    def _write_metrics(
        self,
        conn: Connection,
        run_id: str,
        series: dict[str, list[PointRow]],
        fresh: dict[tuple[str, str], int],
    ) -> None:
        series = {key: rows for key, rows in series.items() if rows}
        if not series:
            return
        ids = self._series(conn, run_id, series, fresh)
        if sum(map(len, series.values())) <= _SMALL_BATCH:
            # Few points (short runs, slow loops): one statement for every key.
            sql, positional = self._points_statement(conn, inline_series=False)
            points = [(ids[key], *row) for key, rows in series.items() for row in rows]
            self._execute_points(conn, sql, positional, ("series_id", *_POINT_COLUMNS), points)
        else:
            # The hot path: rows are bound exactly as the run queued them, no per-row
            # Python work; the series id is an integer from the store, rendered inline.
            template, positional = self._points_statement(conn, inline_series=True)
            for key, rows in series.items():
                sql = template.replace(_SERIES_MARK, str(int(ids[key])))
                self._execute_points(conn, sql, positional, _POINT_COLUMNS, rows)
        latest = []
        for key, rows in series.items():
            step, value, ts = max(rows, key=_step_of)
            latest.append(
                {"run_id": run_id, "key": key, "step": step, "value": value, "timestamp": ts}
            )
        upsert(
            conn,
            latest_metrics,
            latest,
            keys=["run_id", "key"],
            update=["step", "value", "timestamp"],
            newer="step",
        )

    @staticmethod
    def _execute_points(
        conn: Connection,
        sql: str,
        positional: bool,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
    ) -> None:
        bound: Sequence[Any] = (
            rows if positional else [dict(zip(columns, r, strict=True)) for r in rows]
        )
        conn.exec_driver_sql(sql, bound)

    def _series(
        self,
        conn: Connection,
        run_id: str,
        keys: Iterable[str],
        fresh: dict[tuple[str, str], int],
    ) -> dict[str, int]:
        """Series ids for ``run_id``'s ``keys``, creating those the store lacks."""
        found: dict[str, int] = {}
        missing: list[str] = []
        with self._lock:
            for key in keys:
                known = self._series_ids.get((run_id, key)) or fresh.get((run_id, key))
                if known is None:
                    missing.append(key)
                else:
                    found[key] = known
        for start in range(0, len(missing), _SERIES_CHUNK):
            chunk = missing[start : start + _SERIES_CHUNK]
            sql, order = self._series_statement(conn, len(chunk))
            values = {f"r{i}": run_id for i in range(len(chunk))}
            values.update({f"k{i}": key for i, key in enumerate(chunk)})
            bound = tuple(values[name] for name in order) if order is not None else values
            for series_id, key in conn.exec_driver_sql(sql, bound):
                found[key] = series_id
                fresh[(run_id, key)] = series_id
        return found

    def _series_statement(self, conn: Connection, count: int) -> tuple[str, tuple[str, ...] | None]:
        """INSERT of ``count`` series RETURNING their ids, compiled once per count.

        DO UPDATE (a no-op) rather than DO NOTHING, so that RETURNING also yields the ids
        of series that another process created first.
        """
        cache_key = (conn.dialect.name, count)
        cached = self._series_sql.get(cache_key)
        if cached is None:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(metric_series).values(
                [{"run_id": bindparam(f"r{i}"), "key": bindparam(f"k{i}")} for i in range(count)]
            )
            returning = stmt.on_conflict_do_update(
                index_elements=["run_id", "key"], set_={"key": stmt.excluded.key}
            ).returning(metric_series.c.id, metric_series.c.key)
            compiled = returning.compile(dialect=conn.dialect)
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            cached = self._series_sql[cache_key] = (str(compiled), order)
        return cached

    def _points_statement(self, conn: Connection, *, inline_series: bool) -> tuple[str, bool]:
        """The points upsert: per series (its id rendered at a mark), or for any series."""
        cache_key = f"{conn.dialect.name}/{inline_series}"
        cached = self._point_sql.get(cache_key)
        if cached is None:
            name = conn.dialect.name
            insert = postgresql.insert if name == "postgresql" else sqlite.insert
            series_id: Any = (
                literal_column(_SERIES_MARK) if inline_series else bindparam("series_id")
            )
            # inline(): no implicit RETURNING of the key, which would triple SQLite's cost.
            stmt = (
                insert(metrics)
                .inline()
                .values(
                    series_id=series_id,
                    step=bindparam("step"),
                    value=bindparam("value"),
                    timestamp=bindparam("timestamp"),
                )
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["series_id", "step"],
                set_={"value": stmt.excluded.value, "timestamp": stmt.excluded.timestamp},
            )
            compiled = stmt.compile(dialect=conn.dialect)
            expected = _POINT_COLUMNS if inline_series else ("series_id", *_POINT_COLUMNS)
            if compiled.positional:
                assert tuple(compiled.positiontup or ()) == expected
            assert "RETURNING" not in str(compiled)
            cached = self._point_sql[cache_key] = (str(compiled), compiled.positional)
        return cached

    @staticmethod
    def _set_status(conn: Connection, run_id: str, status: dict[str, Any]) -> None:
        if status["kind"] == "resume":
            values: dict[str, Any] = {"status": RunStatus.RUNNING.value, "end_time": None}
        else:
            values = {"status": status["status"], "end_time": status["time"]}
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
