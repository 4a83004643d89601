"""Applies journal records to the store, idempotently, newest write first.

Every write is keyed — runs by id, params/tags by (run, key), points by (series, step) —
so replaying a journal that was already (partly) applied changes nothing. Writes to the
same key are ordered by the time carried in the record, never by the order of arrival: a
run's status and a tag take the value of the newest record, a metric step the point with
the newest timestamp, ``latest_metrics`` the highest (step, timestamp). So a late replay of
an old journal cannot undo what a newer process wrote. Params are fixed: the first value to
reach the store stays, and a different one is refused.

A record the store refuses (a value too long for a column, text a backend cannot hold, a
malformed record) does not block its batch: the batch is applied record by record, and
the refused ones are set aside in the quarantine with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from hone.errors import DiskFullError, HoneError, StoreUnavailableError, WorkspaceError
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
from hone.tracking.batch import Batch, Rejected
from hone.tracking.entities import RunStatus
from hone.tracking.points import Points
from hone.tracking.quarantine import Quarantined, as_quarantined, write_quarantine

__all__ = ["StoreSink"]

log = logging.getLogger("hone.tracking")

# The order Points.rows() gives them in (a metric frame's own order): bound as they come.
_POINT_COLUMNS = ("value", "step", "timestamp")
_SERIES_MARK = "__hone_series_id__"
#: New series are created this many per statement (two parameters each).
_SERIES_CHUNK = 200
#: Up to this many points a batch goes in one statement for all keys.
_SMALL_BATCH = 2000
_KEY_CHUNK = 500
#: Failures that mean "not now" rather than "not this record": the journal waits for later.
_OUTAGES = (StoreUnavailableError, DiskFullError, WorkspaceError)
# The metrics table as the database has it, with its columns declared in the order a packed
# point unpacks (value, step, timestamp): compiled against it, rows bind as they come.
_METRICS_IN_BIND_ORDER = Table(
    "metrics",
    MetaData(),
    *(Column(name, metrics.c[name].type) for name in (*_POINT_COLUMNS, "series_id")),
)
#: Points bound per statement on the hot path: bounds the rows built at once.
_POINT_CHUNK = 20_000


class StoreSink:
    """Writes batches to one metadata store. Safe to share between threads."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Ids the store has committed; ids from a transaction enter only after its commit.
        self._experiment_ids: dict[str, str] = {}
        # run id -> key -> series id; a run's entry goes when the run ends (forget).
        self._series_ids: dict[str, dict[str, int]] = {}
        self._point_sql: dict[str, tuple[str, bool]] = {}
        self._series_sql: dict[tuple[str, int], tuple[str, tuple[str, ...] | None]] = {}
        self._lock = threading.Lock()

    def apply(self, batch: Batch, *, segment: str | None = None) -> list[Quarantined]:
        """Write ``batch``; returns the records set aside instead (refused by the store,
        malformed, or a param that conflicts with the stored value).

        Raises ``StoreUnavailableError`` / ``DiskFullError`` / ``WorkspaceError`` when the
        store cannot take the batch now; nothing is written then, and the caller keeps the
        journal to replay later.
        """
        if not len(batch):
            return []
        try:
            return self._apply(batch, segment)
        except _OUTAGES:
            raise
        except Exception as exc:  # this batch holds a record the store refuses: isolate it
            log.info("hone: the store refused a record of run %s (%s)", batch.run_id, exc)
        out = []
        if batch.rejected:
            out = self._apply(Batch(batch.run_id, rejected=batch.rejected), segment)
        for unit in batch.units():
            out += self._apply_isolated(unit, segment)
        return out

    def _apply_isolated(self, unit: Batch, segment: str | None) -> list[Quarantined]:
        """Apply one record (or one key's points), setting aside what the store refuses.
        A key's points are tried one first: if the store refuses even that, the key itself
        is what it refuses, and the points go aside together rather than one by one."""
        first = unit.first_point()
        if first is not None and len(unit) > 1:
            done, reason = self._attempt(first, segment)
            if reason is not None:
                return self._set_aside(unit.as_rejected(reason), unit.run_id, segment)
        done, reason = self._attempt(unit, segment)
        if reason is None:
            return done
        halves = unit.halves()
        if halves is not None:
            return self._apply_isolated(halves[0], segment) + self._apply_isolated(
                halves[1], segment
            )
        return self._set_aside(unit.as_rejected(reason), unit.run_id, segment)

    def _attempt(self, unit: Batch, segment: str | None) -> tuple[list[Quarantined], str | None]:
        """Apply ``unit``: what it set aside, and None; or, if the store refuses it, why."""
        try:
            return self._apply(unit, segment), None
        except _OUTAGES:
            raise
        except Exception as exc:
            if isinstance(exc, HoneError):
                return [], str(exc)
            return [], f"hone could not apply it: {type(exc).__name__}: {exc}"

    def _set_aside(
        self, rejected: list[Rejected], run_id: str, segment: str | None
    ) -> list[Quarantined]:
        items = [as_quarantined(run_id, r, segment) for r in rejected]
        with self.db.write() as conn:
            write_quarantine(conn, items)
        return items

    def _apply(self, batch: Batch, segment: str | None) -> list[Quarantined]:
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
            refused = list(batch.rejected)
            refused += self._write_params(conn, batch.run_id, batch.params)
            self._write_values(conn, batch)
            self._write_metrics(conn, batch.run_id, batch.metrics, fresh_series)
            for status in statuses:
                self._set_status(conn, batch.run_id, status)
            set_aside = [as_quarantined(batch.run_id, r, segment) for r in refused]
            if set_aside:
                write_quarantine(conn, set_aside)
        with self._lock:
            self._experiment_ids.update(fresh_experiments)
            for (run_id, key), series_id in fresh_series.items():
                self._series_ids.setdefault(run_id, {})[key] = series_id
        return set_aside

    def forget(self, run_id: str) -> None:
        """Drop what this sink remembers of a run (its series ids): the run has ended here,
        and a long-lived process must not grow with every run it ever wrote."""
        with self._lock:
            self._series_ids.pop(run_id, None)

    def claim_params(self, run_id: str, values: dict[str, str]) -> dict[str, str]:
        """Write ``values`` now unless the store holds other values for those keys; returns
        the conflicting keys with their stored values (nothing is written then)."""
        try:
            with self.db.write() as conn:
                stored = _stored_params(conn, run_id, list(values))
                conflicts = {k: stored[k] for k, v in values.items() if stored.get(k, v) != v}
                if not conflicts and self._write_params(conn, run_id, values):
                    # Another process wrote one of these keys after the read above (on
                    # PostgreSQL the insert waited for its commit, then skipped the row):
                    # its values, read again, are the conflict, and nothing of ours stays.
                    stored = _stored_params(conn, run_id, list(values))
                    raise _Lost({k: stored[k] for k, v in values.items() if stored[k] != v})
        except _Lost as lost:
            return lost.conflicts
        return conflicts

    def clock(self, run_id: str) -> float:
        """The newest record time the store holds for the run's status and tags: a process
        continuing the run orders its own writes after it, whatever its clock says."""
        with self.db.read() as conn:
            status_time = conn.execute(
                select(runs.c.status_time).where(runs.c.id == run_id)
            ).scalar()
            tag_time = conn.execute(
                select(func.max(tags.c.updated_at)).where(tags.c.run_id == run_id)
            ).scalar()
        return max(float(status_time or 0.0), float(tag_time or 0.0))

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
            "status_time": final["time"] if final else start["time"],
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
            upsert(
                conn,
                runs,
                [row],
                keys=["id"],
                update=["status", "end_time", "status_time"],
                newer="status_time",
            )

    @staticmethod
    def _write_params(conn: Connection, run_id: str, values: dict[str, str]) -> list[Rejected]:
        """Insert params; a key the store already holds with another value is refused."""
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()]
        if upsert(conn, params, rows, keys=["run_id", "key"]) == len(rows):
            return []
        stored = _stored_params(conn, run_id, list(values))
        return [
            Rejected(
                "params",
                {"values": {key: value}},
                f"param {key!r} is already {stored[key]!r} in the store; params are fixed "
                "once logged (log a tag or metric for values that change)",
            )
            for key, value in values.items()
            if stored.get(key, value) != value
        ]

    @staticmethod
    def _write_values(conn: Connection, batch: Batch) -> None:
        run_id = batch.run_id
        upsert(
            conn,
            tags,
            [
                {"run_id": run_id, "key": k, "value": v, "updated_at": t}
                for k, (v, t) in batch.tags.items()
            ],
            keys=["run_id", "key"],
            update=["value", "updated_at"],
            newer="updated_at",
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
            newer="created_at",
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
        series: dict[str, Points],
        fresh: dict[tuple[str, str], int],
    ) -> None:
        series = {key: points for key, points in series.items() if len(points)}
        if not series:
            return
        ids = self._series(conn, run_id, series, fresh)
        if sum(map(len, series.values())) <= _SMALL_BATCH:
            # Few points (short runs, slow loops): one statement for every key.
            sql, positional = self._points_statement(conn, inline_series=False)
            keyed = [(*row, ids[key]) for key, c in series.items() for row in c.rows()]
            self._execute_points(conn, sql, positional, (*_POINT_COLUMNS, "series_id"), keyed)
        else:
            # The hot path: the series id is an integer from the store, rendered inline;
            # rows are unpacked from the packed points a chunk at a time (bounded memory).
            template, positional = self._points_statement(conn, inline_series=True)
            for key, points in series.items():
                sql = template.replace(_SERIES_MARK, str(int(ids[key])))
                for start in range(0, len(points), _POINT_CHUNK):
                    rows = points.rows(start, start + _POINT_CHUNK)
                    self._execute_points(conn, sql, positional, _POINT_COLUMNS, rows)
        latest = []
        for key, points in series.items():
            value, step, ts = points.newest()
            latest.append(
                {"run_id": run_id, "key": key, "step": step, "value": value, "timestamp": ts}
            )
        upsert(
            conn,
            latest_metrics,
            latest,
            keys=["run_id", "key"],
            update=["step", "value", "timestamp"],
            newer=("step", "timestamp"),
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
            cached = self._series_ids.get(run_id, {})
            for key in keys:
                known = cached.get(key) or fresh.get((run_id, key))
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
                insert(_METRICS_IN_BIND_ORDER)
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
                where=_METRICS_IN_BIND_ORDER.c.timestamp <= stmt.excluded.timestamp,
            )
            compiled = stmt.compile(dialect=conn.dialect)
            expected = _POINT_COLUMNS if inline_series else (*_POINT_COLUMNS, "series_id")
            if compiled.positional:
                assert tuple(compiled.positiontup or ()) == expected
            assert "RETURNING" not in str(compiled)
            cached = self._point_sql[cache_key] = (str(compiled), compiled.positional)
        return cached

    @staticmethod
    def _set_status(conn: Connection, run_id: str, status: dict[str, Any]) -> None:
        time = status["time"]
        if status["kind"] == "resume":
            values: dict[str, Any] = {"status": RunStatus.RUNNING.value, "end_time": None}
        else:
            values = {"status": status["status"], "end_time": time}
        conn.execute(
            update(runs)
            .where(and_(runs.c.id == run_id, runs.c.status_time <= time))
            .values(status_time=time, **values)
        )


class _Lost(Exception):
    """A claim that lost a race, rolling its transaction back."""

    def __init__(self, conflicts: dict[str, str]) -> None:
        super().__init__(conflicts)
        self.conflicts = conflicts


def _stored_params(conn: Connection, run_id: str, keys: Sequence[str]) -> dict[str, str]:
    stored: dict[str, str] = {}
    for start in range(0, len(keys), _KEY_CHUNK):
        chunk = keys[start : start + _KEY_CHUNK]
        for key, value in conn.execute(
            select(params.c.key, params.c.value).where(
                params.c.run_id == run_id, params.c.key.in_(chunk)
            )
        ):
            stored[key] = value
    return stored
