"""hone's side of the benchmarks; prints RESULT lines for run_all.py.

python benchmarks/bench_hone.py WORKDIR [--quick]
"""

from __future__ import annotations

import time
from pathlib import Path

import hone
from hone.tracking.tracker import close_trackers
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


def metric_throughput(workdir: Path, sizes: Sizes) -> None:
    """Single log_metric calls, timed until every point is in the store (run.end drains)."""
    rates, accepted = [], []
    for trial in range(3):
        ws = hone.init(workdir / f"throughput-{trial}")
        n = sizes.metric_points
        start = time.perf_counter()
        with hone.start_run("throughput", workspace=ws) as run:
            for i in range(n):
                run.log_metric("loss", 1.0 / (i + 1), step=i)
            logged = time.perf_counter()
        done = time.perf_counter()
        stored = len(hone.get_metric_history(run.id, "loss", workspace=ws))
        assert stored == n, f"only {stored} of {n} points reached the store"
        rates.append(n / (done - start))
        accepted.append(n / (logged - start))
    emit(
        {
            "bench": "metric_throughput",
            "points": sizes.metric_points,
            "points_per_s": median(rates),
            "accepted_per_s": median(accepted),
        }
    )


def training_overhead(workdir: Path, sizes: Sizes) -> None:
    from training import Loop

    ws = hone.init(workdir / "training")
    loop = Loop()
    loop.run(20, None)  # warm up kernels and allocator

    def logged() -> None:  # the run's start and its final drain are part of the cost
        with hone.start_run("training", workspace=ws) as run:
            loop.run(sizes.train_steps, run.log_metrics)

    def control(values: dict[str, float], step: int) -> None:
        """A callback that does nothing: its "overhead" is the measurement's noise floor."""

    base, overheads = paired_overheads(
        {
            "baseline": lambda: loop.run(sizes.train_steps, None),
            "control": lambda: loop.run(sizes.train_steps, control),
            "hone": logged,
        },
        sizes.train_rounds,
    )
    emit(
        {
            "bench": "training_overhead",
            "steps": sizes.train_steps,
            "rounds": sizes.train_rounds,
            "baseline_steps_per_s": sizes.train_steps / base,
            "hone_overhead_pct": overheads["hone"],
            "control_overhead_pct": overheads["control"],
        }
    )


def runs_and_search(workdir: Path, sizes: Sizes) -> None:
    ws = hone.init(workdir / "runs")

    def create() -> None:
        for i in range(sizes.runs):
            with hone.start_run("bench-runs", params=run_params(i), workspace=ws) as run:
                run.log_metrics(run_metrics(i))

    elapsed = timed(create)
    found: list[hone.Run] = []
    searches = []
    close_trackers()  # the first search of a fresh process (as a CLI call makes it)
    cold = timed(
        lambda: hone.search_runs(
            "bench-runs", filter=SEARCH_FILTER, max_results=SEARCH_MAX_RESULTS, workspace=ws
        )
    )
    for _ in range(sizes.search_repeats):  # then warm, as MLflow's client is measured
        start = time.perf_counter()
        found = hone.search_runs(
            "bench-runs", filter=SEARCH_FILTER, max_results=SEARCH_MAX_RESULTS, workspace=ws
        )
        searches.append(time.perf_counter() - start)
    emit(
        {
            "bench": "runs_and_search",
            "runs": sizes.runs,
            "runs_per_s": sizes.runs / elapsed,
            "search_ms": 1000 * median(searches),
            "cold_search_ms": 1000 * cold,
            "search_results": len(found),
        }
    )


def main() -> None:
    run_selected(
        {
            "metric_throughput": metric_throughput,
            "training_overhead": training_overhead,
            "runs_and_search": runs_and_search,
        }
    )


if __name__ == "__main__":
    main()
