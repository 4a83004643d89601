"""MLflow's side of the benchmarks, run in .venv-mlflow: one trial of one benchmark per process.

    .venv-mlflow/bin/python benchmarks/bench_mlflow.py WORKDIR --only=NAME [--quick]
        [--sqlite=wal] [--points=N]

MLflow uses a local SQLite tracking store, as hone does. By default MLflow's SQLite runs in
rollback-journal mode with ``synchronous=FULL``: every commit is fsynced. ``--sqlite=wal``
is the durability ablation: it gives MLflow hone's settings (WAL, ``synchronous=NORMAL``)
through a SQLAlchemy connect hook installed before MLflow creates its engine.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from rss import Growth, status_mib
from steady import LogFn, control, steady_overheads
from workloads import (
    SEARCH_EXPERIMENT,
    SEARCH_FILTER,
    SEARCH_MAX_RESULTS,
    Sizes,
    emit,
    median,
    option,
    run_metrics,
    run_params,
    run_selected,
    timed,
)


def give_hones_sqlite_settings() -> None:
    """Every SQLite connection MLflow opens from now on: WAL and synchronous=NORMAL."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    event.listen(Engine, "connect", pragmas)


def use_store(path: Path, experiment: str) -> str:
    path.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{path / 'mlflow.db'}")
    return str(mlflow.set_experiment(experiment).experiment_id)


def sqlite_settings() -> dict[str, Any]:
    """The journal mode and synchronous level MLflow's own engine runs with."""
    from mlflow.tracking._tracking_service.utils import _get_store
    from sqlalchemy import text

    engine = _get_store().engine
    with engine.connect() as connection:
        mode = connection.execute(text("PRAGMA journal_mode")).scalar()
        sync = connection.execute(text("PRAGMA synchronous")).scalar()
    levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"journal_mode": mode, "synchronous": levels.get(int(sync or 0), sync)}


def metric_throughput(workdir: Path, sizes: Sizes) -> None:
    use_store(workdir, "throughput")
    n = sizes.mlflow_log_metric_points
    with mlflow.start_run():
        start = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        loop_rate = n / (time.perf_counter() - start)
    batch_rate = _log_batches(sizes.metric_points, sizes.batch_size)
    emit(
        {
            "bench": "metric_throughput",
            "log_metric_per_s": loop_rate,
            "log_batch_per_s": batch_rate,
            "log_metric_points": n,
            "log_batch_points": sizes.metric_points,
            **sqlite_settings(),
        }
    )


def _log_batches(points: int, batch_size: int) -> float:
    """Points per second through log_batch in a run of their own (Metric objects built per
    batch, inside the timing, as hone's loop builds its values)."""
    client = MlflowClient()
    with mlflow.start_run() as run:
        start = time.perf_counter()
        for lo in range(0, points, batch_size):
            now = int(time.time() * 1000)
            batch = [
                Metric("loss", 1.0 / (i + 1), now, i)
                for i in range(lo, min(points, lo + batch_size))
            ]
            client.log_batch(run.info.run_id, metrics=batch)
        return points / (time.perf_counter() - start)


def training_overhead(workdir: Path, sizes: Sizes) -> None:
    from training import Loop

    use_store(workdir, "training")
    loop = Loop()
    loop.run(2 * sizes.block_steps, None)

    def log_metrics(values: dict[str, float], step: int) -> None:
        mlflow.log_metrics(values, step=step)

    def log_metric(values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            mlflow.log_metric(key, value, step=step)

    pending: list[Any] = []

    def log_metrics_async(values: dict[str, float], step: int) -> None:
        pending.append(mlflow.log_metrics(values, step=step, synchronous=False))

    def drain() -> None:
        """Wait for the async calls' own futures. (mlflow.flush_async_logging would restart
        MLflow's logging thread, which idles up to 1 s on its queue: not a cost to count.)"""
        for operation in pending:
            operation.wait()
        pending.clear()

    variants: dict[str, LogFn] = {
        "control": control,
        "log_metrics": log_metrics,
        "log_metric": log_metric,
        "log_metrics_async": log_metrics_async,
    }
    with mlflow.start_run():
        result = steady_overheads(
            loop.run, variants, drain, sizes.block_steps, sizes.overhead_rounds
        )
    emit({"bench": "training_overhead", **result})


def run_lifecycle(workdir: Path, sizes: Sizes) -> None:
    use_store(workdir, "lifecycle")
    with mlflow.start_run():  # the process's first run
        mlflow.log_metrics(_step_values(0), step=0)
    starts: list[float] = []
    ends: dict[bool, list[float]] = {True: [], False: []}
    for i in range(2 * sizes.lifecycle_runs):
        synchronous = i % 2 == 0
        t0 = time.perf_counter()
        mlflow.start_run()
        t1 = time.perf_counter()
        for step in range(sizes.lifecycle_steps):
            mlflow.log_metrics(_step_values(step), step=step, synchronous=synchronous)
        t2 = time.perf_counter()
        mlflow.end_run()  # waits for what async logging still holds
        t3 = time.perf_counter()
        starts.append(t1 - t0)
        ends[synchronous].append(t3 - t2)
    emit(
        {
            "bench": "run_lifecycle",
            "runs": 2 * sizes.lifecycle_runs,
            "points_per_run": 4 * sizes.lifecycle_steps,
            "start_ms": 1000 * median(starts),
            "end_ms": 1000 * median(ends[True]),
            "end_async_ms": 1000 * median(ends[False]),
        }
    )


def _step_values(step: int) -> dict[str, float]:
    return {"loss": 1.0 / (step + 1), "acc": step / 100, "lr": 1e-3, "logit_scale": 2.0}


def _create_runs(runs: int) -> float:
    def create() -> None:
        for i in range(runs):
            with mlflow.start_run():
                mlflow.log_params(run_params(i))
                mlflow.log_metrics(run_metrics(i))

    return timed(create)


def create_runs(workdir: Path, sizes: Sizes) -> None:
    use_store(workdir, SEARCH_EXPERIMENT)
    elapsed = _create_runs(sizes.create_runs)
    emit(
        {
            "bench": "create_runs",
            "runs": sizes.create_runs,
            "runs_per_s": sizes.create_runs / elapsed,
            **sqlite_settings(),
        }
    )


def search_store(workdir: Path, sizes: Sizes) -> None:
    """Build the store the search trials read. Built with WAL for speed, then switched back
    to MLflow's default rollback journal, so searches read the file MLflow would have."""
    give_hones_sqlite_settings()
    use_store(workdir, SEARCH_EXPERIMENT)
    elapsed = _create_runs(sizes.search_runs)
    from mlflow.tracking._tracking_service.utils import _get_store

    _get_store().engine.dispose()
    with sqlite3.connect(workdir / "mlflow.db") as db:
        db.execute("PRAGMA journal_mode=DELETE")
    emit({"bench": "search_store", "runs": sizes.search_runs, "build_s": elapsed})


def search(workdir: Path, sizes: Sizes) -> None:
    """The search in this fresh process: the first call (store, schema check), then warm."""
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    client: MlflowClient | None = None
    experiment_id = ""

    def find() -> list[Any]:
        nonlocal client, experiment_id
        if client is None:
            client = MlflowClient()
            experiment = client.get_experiment_by_name(SEARCH_EXPERIMENT)
            assert experiment is not None, "no search store here: run --only=search_store"
            experiment_id = experiment.experiment_id
        return list(
            client.search_runs(
                [experiment_id], filter_string=SEARCH_FILTER, max_results=SEARCH_MAX_RESULTS
            )
        )

    first = timed(find)
    warm, found = [], []
    for _ in range(sizes.search_repeats):
        start = time.perf_counter()
        found = find()
        warm.append(time.perf_counter() - start)
    emit(
        {
            "bench": "search",
            "first_ms": 1000 * first,
            "warm_ms": 1000 * median(warm),
            "results": len(found),
        }
    )


def memory(workdir: Path, sizes: Sizes) -> None:
    """Peak RSS growth while one run logs points through MLflow's fastest path, log_batch of
    1,000 (a log_metric loop would take hours at these counts), capped at
    ``mlflow_memory_points``; then the log_metric rate the ratio is taken against."""
    requested = int(option("points") or sizes.memory_points[0])
    n = min(requested, sizes.mlflow_memory_points)
    use_store(workdir, "memory")
    client = MlflowClient()
    with mlflow.start_run() as run:
        growth = Growth()
        start = time.perf_counter()
        for lo in range(0, n, sizes.batch_size):
            now = int(time.time() * 1000)
            batch = [
                Metric("loss", 1.0 / (i + 1), now, i)
                for i in range(lo, min(n, lo + sizes.batch_size))
            ]
            client.log_batch(run.info.run_id, metrics=batch)
        batch_rate = n / (time.perf_counter() - start)
        at_end_of_loop = status_mib()
        result = growth.result()
        points = sizes.mlflow_log_metric_points
        start = time.perf_counter()
        for i in range(points):
            mlflow.log_metric("rate", 1.0 / (i + 1), step=i)
        loop_rate = points / (time.perf_counter() - start)
    emit(
        {
            "bench": "memory",
            "requested_points": requested,
            "points": n,
            "log_batch_per_s": batch_rate,
            "log_metric_per_s": loop_rate,
            "anon_mib_after_loop": at_end_of_loop.get("RssAnon"),
            "file_mib_after_loop": at_end_of_loop.get("RssFile"),
            **result,
        }
    )


def main() -> None:
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    if option("sqlite") == "wal":
        give_hones_sqlite_settings()
    run_selected(
        {
            "metric_throughput": metric_throughput,
            "training_overhead": training_overhead,
            "run_lifecycle": run_lifecycle,
            "create_runs": create_runs,
            "search_store": search_store,
            "search": search,
            "memory": memory,
        }
    )


if __name__ == "__main__":
    main()
