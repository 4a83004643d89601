"""The benchmark workloads, defined once for both sides (hone and MLflow).

Standard library only: this module is imported from hone's environment and from MLflow's.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sizes:
    metric_points: int = 200_000  # hone's log_metric loop and MLflow's log_batch feed
    mlflow_log_metric_points: int = 1_000  # MLflow log_metric loop (2 to 7 s)
    batch_size: int = 1_000  # MLflow log_batch size
    train_steps: int = 40  # per timed training trial (about 0.85 s)
    train_rounds: int = 31  # paired rounds, each variant once per round
    runs: int = 10_000  # runs created, then searched
    search_repeats: int = 5
    kill_points: int = 200_000
    data_rows: int = 1_000_000  # the sample-library benchmarks' big version
    adapter_sample_rows: int = 200_000  # per-sample DataLoader runs (about 2 s each)
    import_rows: int = 200_000  # rows of the CSV / Parquet import benchmark

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            metric_points=20_000,
            mlflow_log_metric_points=100,
            train_steps=10,
            train_rounds=3,
            runs=300,
            search_repeats=2,
            kill_points=40_000,
            data_rows=20_000,
            adapter_sample_rows=5_000,
            import_rows=5_000,
        )


SEARCH_FILTER = "metrics.m0 > 0.5 and params.p1 = 'a'"
SEARCH_MAX_RESULTS = 1000


def run_params(i: int) -> dict[str, str]:
    """10 params per run; p1 takes 4 values, so the search filter keeps about 1 in 8."""
    rng = random.Random(i)
    return {
        "p0": str(i),
        "p1": "abcd"[i % 4],
        **{f"p{j}": str(rng.choice([0.1, 0.01, 0.001, 32, 64, 128])) for j in range(2, 10)},
    }


def run_metrics(i: int) -> dict[str, float]:
    rng = random.Random(10_000_000 + i)
    return {f"m{j}": rng.random() for j in range(10)}


def median(values: list[float]) -> float:
    return statistics.median(values)


def paired_overheads(
    variants: dict[str, Callable[[], Any]], rounds: int
) -> tuple[float, dict[str, float]]:
    """Time a baseline and each variant once per round, in an order that alternates, and
    return the baseline's median time and each variant's median overhead in percent, taken
    over per-round ratios so that slow drift of the machine cancels out."""
    names = list(variants)
    assert names[0] == "baseline"
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else reversed(names):
            times[name].append(timed(variants[name]))
    overheads = {
        name: 100
        * (median([v / b for v, b in zip(times[name], times["baseline"], strict=True)]) - 1)
        for name in names[1:]
    }
    return median(times["baseline"]), overheads


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def emit(result: dict[str, Any]) -> None:
    """Results travel to the orchestrator as one JSON line on stdout."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def sizes_from_argv() -> Sizes:
    return Sizes.quick() if "--quick" in sys.argv else Sizes()


def sizes_dict(sizes: Sizes) -> dict[str, int]:
    return asdict(sizes)


def run_selected(benches: dict[str, Callable[[Path, Sizes], None]]) -> None:
    """``script.py WORKDIR [--quick] [--only=NAME]``: run the named benchmark, or all."""
    workdir = Path(sys.argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = sizes_from_argv()
    only = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")), None)
    if only is not None and only not in benches:
        raise SystemExit(f"--only={only}: no such benchmark (one of {', '.join(benches)})")
    for name, bench in benches.items():
        if only in (None, name):
            bench(workdir, sizes)
