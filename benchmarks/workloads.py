"""The benchmark workloads, defined once for both sides (hone and MLflow).

Standard library only: this module is imported from hone's environment and from MLflow's.
A trial script is run as ``script.py WORKDIR --only=NAME [--quick] [--KEY=VALUE ...]``:
one benchmark, one side, one fresh process; ``run_all.py`` schedules the trials.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sizes:
    pairs: int = 3  # interleaved hone/MLflow trial pairs per benchmark (>= 3)
    cheap_pairs: int = 5  # for benchmarks whose trials take seconds
    metric_points: int = 200_000  # hone's log_metric loop and MLflow's log_batch feed
    mlflow_log_metric_points: int = 1_000  # MLflow log_metric loop (2 to 7 s)
    batch_size: int = 1_000  # MLflow log_batch size
    block_steps: int = 30  # training steps per timed block (~0.65 s)
    overhead_rounds: int = 5  # rounds of (logging, tail, baseline) blocks per variant
    lifecycle_runs: int = 40  # runs started and ended per lifecycle trial
    lifecycle_steps: int = 40  # steps of 4 metrics logged in each of those runs
    create_runs: int = 2_000  # runs created per run-creation trial
    search_runs: int = 10_000  # runs in the store that search trials read
    search_repeats: int = 5
    kill_points: int = 200_000  # steps the kill -9 child would log (2 points a step)
    kill_trials: int = 5
    memory_points: tuple[int, ...] = (1_000_000, 5_000_000)
    mlflow_memory_points: int = 200_000  # MLflow log_batch(1000) points in a memory trial
    data_rows: int = 1_000_000  # the sample-library benchmarks' big version
    adapter_sample_rows: int = 200_000  # per-sample DataLoader runs (about 2 s each)
    import_rows: int = 200_000  # rows of the CSV / Parquet import benchmark
    train_epochs: int = 30  # epochs of the digits CNN in the training-loop benchmark
    scaling_epochs: int = 30  # epochs of each scaling trial: 24 x 24 near its plateau
    restart_trials: int = 3
    model_epochs: int = 10  # epochs of the digits CNN the serving benchmark loads
    predict_calls: int = 5_000  # timed batch-1 predictions per serving trial
    serve_seconds: float = 8.0  # wrk's duration per connection count (bench_serve.py)
    memory_predictions: int = 1_000_000  # recorded by one server (bench_serve.py)
    predict_batches: int = 2_000  # timed batch-64 predictions per serving trial

    @classmethod
    def quick(cls) -> Sizes:
        """A smoke run: every code path once, in seconds per benchmark; not figures."""
        return cls(
            pairs=1,
            cheap_pairs=1,
            metric_points=10_000,
            mlflow_log_metric_points=50,
            block_steps=3,
            overhead_rounds=1,
            lifecycle_runs=3,
            lifecycle_steps=5,
            create_runs=50,
            search_runs=100,
            search_repeats=2,
            kill_points=40_000,
            kill_trials=3,
            memory_points=(50_000,),
            mlflow_memory_points=5_000,
            data_rows=20_000,
            adapter_sample_rows=5_000,
            import_rows=5_000,
            train_epochs=2,
            scaling_epochs=1,
            restart_trials=1,
            model_epochs=1,
            predict_calls=300,
            serve_seconds=1.0,
            memory_predictions=20_000,
            predict_batches=50,
        )


SEARCH_EXPERIMENT = "bench-runs"
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


def expected_search_hits(runs: int) -> int:
    """How many of the first ``runs`` runs SEARCH_FILTER keeps, computed without a store."""
    return sum(run_metrics(i)["m0"] > 0.5 and run_params(i)["p1"] == "a" for i in range(runs))


def kill9_value(step: int) -> float:
    """The value the kill -9 child logs at ``step``: exact IEEE arithmetic, so the parent
    recomputes it bit for bit."""
    return step * 0.5 + 1.0 / (step + 1)


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def emit(result: dict[str, Any]) -> None:
    """Results travel to the orchestrator as one JSON line on stdout."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def sizes_from_argv() -> Sizes:
    """The default sizes, or ``--quick``'s; ``--pairs=N`` sets the rounds of every
    interleaved benchmark (more rounds on a machine that is lent for minutes)."""
    sizes = Sizes.quick() if "--quick" in sys.argv else Sizes()
    pairs = option("pairs")
    if pairs is None:
        return sizes
    if not pairs.isdigit() or int(pairs) < 1:
        raise SystemExit(f"--pairs={pairs}: give a whole number of at least 1")
    return replace(sizes, pairs=int(pairs), cheap_pairs=int(pairs))


def sizes_dict(sizes: Sizes) -> dict[str, Any]:
    return asdict(sizes)


def option(name: str, default: str | None = None) -> str | None:
    """The value of ``--name=VALUE`` on the command line, else ``default``."""
    prefix = f"--{name}="
    return next((a[len(prefix) :] for a in sys.argv if a.startswith(prefix)), default)


def run_selected(benches: dict[str, Callable[[Path, Sizes], None]]) -> None:
    """``script.py WORKDIR [--quick] [--only=NAME]``: run the named benchmark, or all."""
    workdir = Path(sys.argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = sizes_from_argv()
    only = option("only")
    if only is not None and only not in benches:
        raise SystemExit(f"--only={only}: no such benchmark (one of {', '.join(benches)})")
    for name, bench in benches.items():
        if only in (None, name):
            bench(workdir, sizes)
