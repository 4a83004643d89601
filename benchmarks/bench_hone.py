"""hone's side of the benchmarks: one trial of one benchmark per process.

    python benchmarks/bench_hone.py WORKDIR --only=NAME [--quick] [--points=N]

Prints RESULT lines for run_all.py, which runs these trials interleaved with MLflow's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hone
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


def sqlite_settings(ws: hone.Workspace) -> dict[str, Any]:
    """The journal mode and synchronous level hone's own engine runs with (the durability
    the figures are bought with); empty if hone's internals have moved."""
    try:
        from sqlalchemy import text

        from hone.tracking.tracker import get_tracker

        with get_tracker(ws).db.engine.connect() as connection:
            mode = connection.execute(text("PRAGMA journal_mode")).scalar()
            sync = connection.execute(text("PRAGMA synchronous")).scalar()
    except (ImportError, AttributeError):
        return {}
    levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"journal_mode": mode, "synchronous": levels.get(int(sync or 0), sync)}


def metric_throughput(workdir: Path, sizes: Sizes) -> None:
    """Single log_metric calls, timed until every point is in the store (run.end drains)."""
    ws = hone.init(workdir / "ws")
    n = sizes.metric_points
    start = time.perf_counter()
    with hone.start_run("throughput", workspace=ws) as run:
        for i in range(n):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        logged = time.perf_counter()
    done = time.perf_counter()
    stored = len(hone.get_metric_history(run.id, "loss", workspace=ws))
    if stored != n:
        raise SystemExit(f"only {stored} of {n} points reached the store")
    emit(
        {
            "bench": "metric_throughput",
            "points": n,
            "points_per_s": n / (done - start),
            "accepted_per_s": n / (logged - start),
            **sqlite_settings(ws),
        }
    )


def training_overhead(workdir: Path, sizes: Sizes) -> None:
    """Steady-state per-step cost of logging 4 metrics a step on one long run."""
    from training import Loop

    ws = hone.init(workdir / "ws")
    loop = Loop()
    loop.run(2 * sizes.block_steps, None)  # warm up kernels and allocator
    with hone.start_run("training", workspace=ws) as run:

        def log_metrics(values: dict[str, float], step: int) -> None:
            run.log_metrics(values, step=step)

        def log_metric(values: dict[str, float], step: int) -> None:
            for key, value in values.items():
                run.log_metric(key, value, step=step)

        def drain() -> None:
            # Writes what is pending and nothing else, as MLflow's side waits on its
            # futures: reading the run back (run.fetch) would charge every variant, the
            # control too, for a query no training loop makes (it was +2.9% here).
            with run.lock:
                run.flush()

        variants: dict[str, LogFn] = {
            "control": control,
            "log_metrics": log_metrics,
            "log_metric": log_metric,
        }
        result = steady_overheads(
            loop.run, variants, drain, sizes.block_steps, sizes.overhead_rounds
        )
    emit({"bench": "training_overhead", **result})


def run_lifecycle(workdir: Path, sizes: Sizes) -> None:
    """What starting and ending a run costs, apart from the steps between."""
    ws = hone.init(workdir / "ws")
    with hone.start_run("lifecycle", workspace=ws) as run:  # the process's first run
        run.log_metrics(_step_values(0), step=0)
    starts, ends = [], []
    for _ in range(sizes.lifecycle_runs):
        t0 = time.perf_counter()
        run = hone.start_run("lifecycle", workspace=ws)
        t1 = time.perf_counter()
        for step in range(sizes.lifecycle_steps):
            run.log_metrics(_step_values(step), step=step)
        t2 = time.perf_counter()
        run.end()
        t3 = time.perf_counter()
        starts.append(t1 - t0)
        ends.append(t3 - t2)
    emit(
        {
            "bench": "run_lifecycle",
            "runs": sizes.lifecycle_runs,
            "points_per_run": 4 * sizes.lifecycle_steps,
            "start_ms": 1000 * median(starts),
            "end_ms": 1000 * median(ends),
        }
    )


def _step_values(step: int) -> dict[str, float]:
    return {"loss": 1.0 / (step + 1), "acc": step / 100, "lr": 1e-3, "logit_scale": 2.0}


def _create_runs(ws: hone.Workspace, runs: int) -> float:
    def create() -> None:
        for i in range(runs):
            with hone.start_run(SEARCH_EXPERIMENT, params=run_params(i), workspace=ws) as run:
                run.log_metrics(run_metrics(i))

    return timed(create)


def create_runs(workdir: Path, sizes: Sizes) -> None:
    """Runs created the way a user would: start with params, log 10 metrics, end."""
    ws = hone.init(workdir / "ws")
    elapsed = _create_runs(ws, sizes.create_runs)
    emit(
        {
            "bench": "create_runs",
            "runs": sizes.create_runs,
            "runs_per_s": sizes.create_runs / elapsed,
            **sqlite_settings(ws),
        }
    )


def search_store(workdir: Path, sizes: Sizes) -> None:
    """Build the store that the search trials read (not itself a figure)."""
    elapsed = _create_runs(hone.init(workdir / "ws"), sizes.search_runs)
    emit({"bench": "search_store", "runs": sizes.search_runs, "build_s": elapsed})


def search(workdir: Path, sizes: Sizes) -> None:
    """The search in this fresh process: the first call (engine, schema check), then warm."""
    ws = workdir / "ws"

    def find() -> list[hone.Run]:
        return hone.search_runs(
            SEARCH_EXPERIMENT, filter=SEARCH_FILTER, max_results=SEARCH_MAX_RESULTS, workspace=ws
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
    """Peak RSS growth while one run logs N points in a tight loop, and the throughput."""
    n = int(option("points") or sizes.memory_points[0])
    ws = hone.init(workdir / "ws")
    run = hone.start_run("memory", workspace=ws)
    growth = Growth()
    start = time.perf_counter()
    log = run.log_metric
    for i in range(n):
        log("loss", 1.0 / (i + 1), step=i)
    logged = time.perf_counter()
    at_end_of_loop = status_mib()
    run.end()
    done = time.perf_counter()
    emit(
        {
            "bench": "memory",
            "points": n,
            "points_per_s": n / (done - start),
            "accepted_per_s": n / (logged - start),
            "anon_mib_after_loop": at_end_of_loop.get("RssAnon"),
            "file_mib_after_loop": at_end_of_loop.get("RssFile"),
            **growth.result(),
        }
    )


def main() -> None:
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
