"""hone's side of the benchmarks; prints RESULT lines for run_all.py.

python benchmarks/bench_hone.py WORKDIR [--quick]
"""

from __future__ import annotations

import sys
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
    run_metrics,
    run_params,
    sizes_from_argv,
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
    times: dict[str, list[float]] = {"baseline": [], "hone": []}
    for _ in range(sizes.train_rounds):
        times["baseline"].append(timed(lambda: loop.run(sizes.train_steps, None)))
        with hone.start_run("training", workspace=ws) as run:
            times["hone"].append(timed(lambda: loop.run(sizes.train_steps, run.log_metrics)))
    base, with_hone = median(times["baseline"]), median(times["hone"])
    emit(
        {
            "bench": "training_overhead",
            "steps": sizes.train_steps,
            "baseline_steps_per_s": sizes.train_steps / base,
            "hone_steps_per_s": sizes.train_steps / with_hone,
            "hone_overhead_pct": 100 * (with_hone - base) / base,
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
    for _ in range(sizes.search_repeats):
        close_trackers()  # a cold process's first search, as a CLI call would be
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
            "search_results": len(found),
        }
    )


def main() -> None:
    workdir = Path(sys.argv[1])
    sizes = sizes_from_argv()
    only = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")), None)
    for name, fn in (
        ("metric_throughput", metric_throughput),
        ("training_overhead", training_overhead),
        ("runs_and_search", runs_and_search),
    ):
        if only in (None, name):
            fn(workdir, sizes)


if __name__ == "__main__":
    main()
