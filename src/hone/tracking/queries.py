"""Reading runs back: one run, metric history, search. Functions a REST API can call too."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from sqlalchemy import Connection, Select, func, select

from hone.errors import FilterError, NotFoundError, RejectedError, UserError, ValidationError
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
from hone.tracking.entities import Artifact, Experiment, Input, Metric, Run, RunStatus
from hone.tracking.filter import parse_filter, parse_order_by
from hone.tracking.validation import check_key

__all__ = [
    "MAX_EXPERIMENTS",
    "MAX_RESULTS",
    "MetricColumns",
    "count_runs",
    "get_run",
    "list_experiments",
    "metric_columns",
    "metric_history",
    "resolve_run_id",
    "run_keys",
    "runs_per_experiment",
    "search_runs",
]

# MLflow's cap, so a search written for MLflow runs unchanged. Every result is hydrated with
# all its params, tags and latest metrics: 10,000 runs of 10 params and 10 metrics took
# 0.76 s and ~50 MB on SQLite, so the cap bounds one call near 4 s and 250 MB.
MAX_RESULTS = 50_000
MAX_EXPERIMENTS = 1_000
_CHUNK = 1000
NAN = float("nan")


def _run_select() -> Select[Any]:
    return select(runs, experiments.c.name.label("experiment_name")).join(
        experiments, experiments.c.id == runs.c.experiment_id
    )


def _shown(value: object) -> str:
    """A value as an error message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}…"


def resolve_run_id(db: Database, run_id: str) -> str:
    """A full run id from an id or a unique prefix of one (as git does for commits)."""
    if not isinstance(run_id, str):
        raise ValidationError(
            f"run_id must be a string (a run id or a unique prefix of one), got "
            f"{type(run_id).__name__} {_shown(run_id)}"
        )
    text = run_id.strip().lower()
    if not text or any(c not in "0123456789abcdef" for c in text) or len(text) > 32:
        raise ValidationError(
            f"run_id {_shown(run_id)} is not a run id (32 hex digits, or a prefix of one)"
        )
    with db.read() as conn:
        if len(text) == 32:
            found = conn.execute(select(runs.c.id).where(runs.c.id == text)).scalars().all()
        else:
            found = (
                conn.execute(
                    select(runs.c.id).where(runs.c.id.startswith(text, autoescape=True)).limit(6)
                )
                .scalars()
                .all()
            )
    if not found:
        raise NotFoundError(f"no run {_shown(run_id)} in {db.display_url()}")
    if len(found) > 1:
        raise UserError(
            f"run id prefix {_shown(run_id)} is ambiguous: it matches {', '.join(found[:5])}"
            f"{' …' if len(found) > 5 else ''}; give more digits"
        )
    return str(found[0])


def get_run(db: Database, run_id: str) -> Run:
    full = resolve_run_id(db, run_id)
    with db.read() as conn:
        rows = conn.execute(_run_select().where(runs.c.id == full)).mappings().all()
        return _hydrate(conn, rows)[0]


@dataclass(frozen=True)
class MetricColumns:
    """A metric's points as three columns in step order; a NaN value is None."""

    key: str
    step: list[int]
    value: list[float | None]
    time: list[float]


def metric_columns(
    db: Database, run_id: str, key: str, *, after_step: int | None = None
) -> MetricColumns:
    """A metric's points as columns, in step order; with ``after_step``, only those past it
    (what a live chart lacks). Read through the driver's cursor: 100,000 points took ~95 ms
    on SQLite here this way (the query alone ~60 ms), ~300 ms as SQLAlchemy rows and
    ``Metric`` objects."""
    check_key(key, "metric")  # a key that could never be logged is a mistake, not a miss
    after = _checked_step(after_step)
    full = resolve_run_id(db, run_id)
    where = [metric_series.c.run_id == full, metric_series.c.key == key]
    if after is not None:
        where.append(metrics.c.step > after)
    query = (
        select(metrics.c.step, metrics.c.value, metrics.c.timestamp)
        .join(metric_series, metric_series.c.id == metrics.c.series_id)
        .where(*where)
        .order_by(metrics.c.step)
    )
    with db.read() as conn, _collector_paused():
        rows = _driver_rows(conn, query)
    if not rows and after is None:
        with db.read() as conn:
            known = (
                conn.execute(select(latest_metrics.c.key).where(latest_metrics.c.run_id == full))
                .scalars()
                .all()
            )
            raise NotFoundError(
                f"run {full} has no metric {key!r}"
                + (f"; it has {', '.join(sorted(known))}" if known else "; it has no metrics")
            )
    with _collector_paused():
        return MetricColumns(key, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def _driver_rows(conn: Connection, query: Select[Any]) -> list[tuple[Any, ...]]:
    """The query's rows as the driver gives them (tuples), without SQLAlchemy's row objects:
    the statement is still compiled by SQLAlchemy, its values bound, never formatted in."""
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    names = compiled.positiontup
    args: Any = [params[name] for name in names] if names is not None else params
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def metric_history(
    db: Database, run_id: str, key: str, *, after_step: int | None = None
) -> list[Metric]:
    """A metric's points in step order; with ``after_step``, only those past it."""
    found = metric_columns(db, run_id, key, after_step=after_step)
    with _collector_paused():
        return [
            Metric(key, NAN if v is None else v, s, t)
            for s, v, t in zip(found.step, found.value, found.time, strict=True)
        ]


def _checked_step(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValidationError(f"after_step must be a whole number, got {_shown(value)}")
    if not -(2**63) <= int(value) < 2**63:
        raise ValidationError(f"after_step {_shown(value)} is out of range")
    return int(value)


def list_experiments(db: Database) -> list[Experiment]:
    with db.read() as conn:
        rows = conn.execute(select(experiments).order_by(experiments.c.name)).all()
    return [Experiment(r.id, r.name, r.created_at) for r in rows]


def search_runs(
    db: Database,
    *,
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    offset: int = 0,
) -> list[Run]:
    """Runs matching ``filter`` in ``experiment`` (a name or names; all if None), at most
    ``max_results`` (1 to ``MAX_RESULTS``), skipping the first ``offset`` (a page further
    on). Bad arguments raise ``ValidationError``, a bad filter or order-by ``FilterError``,
    both before the store is asked."""
    limit = _checked_max_results(max_results)
    skip = _checked_offset(offset)
    order = parse_order_by(order_by)
    query = _matching(_run_select(), experiment, filter)
    query = query.order_by(*order, runs.c.start_time.desc(), runs.c.id).limit(limit)
    if skip:
        query = query.offset(skip)
    try:
        with db.read() as conn:
            rows = conn.execute(query).mappings().all()
            return _hydrate(conn, rows)
    except RejectedError as exc:
        raise FilterError(f"the store refused this search; simplify the filter ({exc})") from exc


def count_runs(
    db: Database,
    *,
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
) -> int:
    """How many runs ``search_runs`` would find with these arguments and no limit."""
    query = _matching(
        select(func.count()).select_from(
            runs.join(experiments, experiments.c.id == runs.c.experiment_id)
        ),
        experiment,
        filter,
    )
    try:
        with db.read() as conn:
            return int(conn.execute(query).scalar_one())
    except RejectedError as exc:
        raise FilterError(f"the store refused this search; simplify the filter ({exc})") from exc


def _matching(
    query: Select[Any], experiment: str | Sequence[str] | None, filter: str | None
) -> Select[Any]:
    names = _checked_experiments(experiment)
    condition = parse_filter(filter)
    if names is not None:
        query = query.where(experiments.c.name.in_(names))
    if condition is not None:
        query = query.where(condition)
    return query


def _checked_offset(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= int(value) < 2**62:
        raise ValidationError(f"offset must be a whole number from 0, got {_shown(value)}")
    return int(value)


def _checked_max_results(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValidationError(
            f"max_results must be a whole number, got {type(value).__name__} {_shown(value)}"
        )
    if not 1 <= int(value) <= MAX_RESULTS:
        raise ValidationError(
            f"max_results must be between 1 and {MAX_RESULTS:,}, got {_shown(value)}"
        )
    return int(value)


def _checked_experiments(value: object) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or isinstance(names, (bytes, bytearray)):
        raise ValidationError(
            f"experiment must be a name or a list of names, got {type(value).__name__}"
        )
    if len(names) > MAX_EXPERIMENTS:
        raise ValidationError(
            f"experiment lists {len(names):,} names; the limit is {MAX_EXPERIMENTS:,}"
        )
    for name in names:
        if not isinstance(name, str):
            raise ValidationError(
                f"experiment names must be strings, got {type(name).__name__} {_shown(name)}"
            )
        if "\x00" in name or any("\ud800" <= c <= "\udfff" for c in name):
            raise ValidationError(f"experiment name {_shown(name)} is not valid text")
    return list(names)


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many small acyclic objects: otherwise its full
    collections, triggered by the allocations, add 30-40 ms to a 1,000-run search."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _hydrate(conn: Connection, rows: Sequence[Any]) -> list[Run]:
    with _collector_paused():
        return _build_runs(conn, rows)


def _build_runs(conn: Connection, rows: Sequence[Any]) -> list[Run]:
    ids = [r["id"] for r in rows]
    p: dict[str, dict[str, str]] = defaultdict(dict)
    t: dict[str, dict[str, str]] = defaultdict(dict)
    m: dict[str, dict[str, Metric]] = defaultdict(dict)
    a: dict[str, list[Artifact]] = defaultdict(list)
    inputs: dict[str, list[Input]] = defaultdict(list)
    for chunk in _chunks(ids):
        for run_id, version_id, dataset, split in conn.execute(
            select(
                run_inputs.c.run_id,
                run_inputs.c.version_id,
                run_inputs.c.dataset,
                run_inputs.c.split,
            )
            .where(run_inputs.c.run_id.in_(chunk))
            .order_by(run_inputs.c.dataset, run_inputs.c.split)
        ).all():
            inputs[run_id].append(Input(version_id, dataset, split or None))
        for run_id, key, value in conn.execute(
            select(params.c.run_id, params.c.key, params.c.value).where(params.c.run_id.in_(chunk))
        ).all():
            p[run_id][key] = value
        for run_id, key, value in conn.execute(
            select(tags.c.run_id, tags.c.key, tags.c.value).where(tags.c.run_id.in_(chunk))
        ).all():
            t[run_id][key] = value
        lm = latest_metrics.c
        for run_id, key, step, value, ts in conn.execute(
            select(lm.run_id, lm.key, lm.step, lm.value, lm.timestamp).where(lm.run_id.in_(chunk))
        ).all():
            m[run_id][key] = Metric(key, NAN if value is None else value, step, ts)
        for run_id, path, digest, size in conn.execute(
            select(artifacts.c.run_id, artifacts.c.path, artifacts.c.digest, artifacts.c.size)
            .where(artifacts.c.run_id.in_(chunk))
            .order_by(artifacts.c.path)
        ).all():
            a[run_id].append(Artifact(path, digest, size))
    return [
        Run(
            id=r["id"],
            experiment_id=r["experiment_id"],
            experiment=r["experiment_name"],
            name=r["name"],
            status=RunStatus(r["status"]),
            start_time=r["start_time"],
            end_time=r["end_time"],
            parent_run_id=r["parent_run_id"],
            git_commit=r["git_commit"],
            git_dirty=r["git_dirty"],
            host=r["host"],
            user=r["user"],
            source=r["source"],
            environment_json=r["environment"] or "",
            params=p.get(r["id"], {}),
            tags=t.get(r["id"], {}),
            metrics=m.get(r["id"], {}),
            artifacts=tuple(a.get(r["id"], ())),
            inputs=tuple(inputs.get(r["id"], ())),
        )
        for r in rows
    ]


def run_keys(
    db: Database, *, experiment: str | Sequence[str] | None = None, limit: int = 1000
) -> dict[str, list[str]]:
    """The param, metric and tag keys the runs of ``experiment`` (all if None) hold, sorted,
    at most ``limit`` of each: what a runs table offers as columns and sort fields."""
    names = _checked_experiments(experiment)
    out: dict[str, list[str]] = {}
    with db.read() as conn:
        for kind, table in (("params", params), ("metrics", latest_metrics), ("tags", tags)):
            query = select(table.c.key).distinct()
            if names is not None:
                query = query.join(runs, runs.c.id == table.c.run_id).join(
                    experiments, experiments.c.id == runs.c.experiment_id
                )
                query = query.where(experiments.c.name.in_(names))
            query = query.order_by(table.c.key).limit(limit)
            out[kind] = [str(k) for k in conn.execute(query).scalars()]
    return out


def runs_per_experiment(db: Database) -> dict[str, int]:
    """Every experiment's name with how many runs it holds (0 for an empty one)."""
    query = (
        select(experiments.c.name, func.count(runs.c.id))
        .select_from(experiments.outerjoin(runs, runs.c.experiment_id == experiments.c.id))
        .group_by(experiments.c.name)
        .order_by(experiments.c.name)
    )
    with db.read() as conn:
        return {str(name): int(count) for name, count in conn.execute(query).all()}
