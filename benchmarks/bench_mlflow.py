"""MLflow's side of the benchmarks, run in .venv-mlflow; prints RESULT lines.

    .venv-mlflow/bin/python benchmarks/bench_mlflow.py WORKDIR [--quick]

MLflow uses a local SQLite tracking store, as hone does.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from workloads import (
    SEARCH_FILTER,
    SEARCH_MAX_RESULTS,
    Sizes,
    emit,
    median,
    paired_overheads,
    run_metrics,
    run_params,
    run_selected,
    timed,
)


def use_store(path: Path, experiment: str) -> str:
    path.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{path / 'mlflow.db'}")
    return str(mlflow.set_experiment(experiment).experiment_id)


def metric_throughput(workdir: Path, sizes: Sizes) -> None:
    use_store(workdir / "throughput", "throughput")
    n = sizes.mlflow_log_metric_points
    with mlflow.start_run():
        start = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        loop_rate = n / (time.perf_counter() - start)
    client = MlflowClient()
    with mlflow.start_run() as run:
        points = [
            Metric("loss", 1.0 / (i + 1), int(time.time() * 1000), i)
            for i in range(sizes.metric_points)
        ]
        start = time.perf_counter()
        for i in range(0, len(points), sizes.batch_size):
            client.log_batch(run.info.run_id, metrics=points[i : i + sizes.batch_size])
        batch_rate = len(points) / (time.perf_counter() - start)
    emit(
        {
            "bench": "metric_throughput",
            "log_metric_per_s": loop_rate,
            "log_batch_per_s": batch_rate,
            "log_metric_points": n,
            "log_batch_points": sizes.metric_points,
        }
    )


def training_overhead(workdir: Path, sizes: Sizes) -> None:
    from training import Loop

    use_store(workdir / "training", "training")
    loop = Loop()
    loop.run(20, None)

    def sync_log(values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            mlflow.log_metric(key, value, step=step)

    def async_log(values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            mlflow.log_metric(key, value, step=step, synchronous=False)

    def run_with(log: Callable[[dict[str, float], int], None]) -> None:
        with mlflow.start_run():  # start and end (which waits for async logging) count
            loop.run(sizes.train_steps, log)

    base, overheads = paired_overheads(
        {
            "baseline": lambda: loop.run(sizes.train_steps, None),
            "sync": lambda: run_with(sync_log),
            "async": lambda: run_with(async_log),
        },
        sizes.train_rounds,
    )
    emit(
        {
            "bench": "training_overhead",
            "baseline_steps_per_s": sizes.train_steps / base,
            "mlflow_overhead_pct": overheads["sync"],
            "mlflow_async_overhead_pct": overheads["async"],
        }
    )


def runs_and_search(workdir: Path, sizes: Sizes) -> None:
    experiment_id = use_store(workdir / "runs", "bench-runs")

    def create() -> None:
        for i in range(sizes.runs):
            with mlflow.start_run():
                mlflow.log_params(run_params(i))
                mlflow.log_metrics(run_metrics(i))

    elapsed = timed(create)
    client = MlflowClient()
    searches, found = [], []
    for _ in range(sizes.search_repeats):
        start = time.perf_counter()
        found = client.search_runs(
            [experiment_id], filter_string=SEARCH_FILTER, max_results=SEARCH_MAX_RESULTS
        )
        searches.append(time.perf_counter() - start)
    emit(
        {
            "bench": "runs_and_search",
            "runs": sizes.runs,
            "runs_per_s": sizes.runs / elapsed,
            "search_ms": 1000 * median(searches),
            "search_results": len(found),
        }
    )


def main() -> None:
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    run_selected(
        {
            "metric_throughput": metric_throughput,
            "training_overhead": training_overhead,
            "runs_and_search": runs_and_search,
        }
    )


if __name__ == "__main__":
    main()
