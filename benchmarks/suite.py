"""The side-by-side benchmarks: which trials run, interleaved how, summarized how.

Every trial is a fresh process (``trials.spawn``) in a fresh work folder. Sides take turns
within each round (``trials.interleaved``); each figure is quoted as the median and range
over rounds, and each ratio as the median and range of the per-round ratios.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trials import Trial, interleaved, pair_ratios, spawn, spread
from workloads import SEARCH_EXPERIMENT, SEARCH_FILTER, SEARCH_MAX_RESULTS, Sizes

HERE = Path(__file__).resolve().parent

FRESH_HONE = f"""
import sys, hone
found = hone.search_runs({SEARCH_EXPERIMENT!r}, filter={SEARCH_FILTER!r},
                         max_results={SEARCH_MAX_RESULTS}, workspace=sys.argv[1])
print("RESULT", '{{"bench": "fresh_search", "results": %d}}' % len(found))
"""

FRESH_MLFLOW = f"""
import sys, logging, warnings
warnings.simplefilter("ignore")
import mlflow
from mlflow.tracking import MlflowClient
logging.getLogger("mlflow").setLevel(logging.ERROR)
mlflow.set_tracking_uri("sqlite:///" + sys.argv[1])
client = MlflowClient()
experiment = client.get_experiment_by_name({SEARCH_EXPERIMENT!r})
found = client.search_runs([experiment.experiment_id], filter_string={SEARCH_FILTER!r},
                           max_results={SEARCH_MAX_RESULTS})
print("RESULT", '{{"bench": "fresh_search", "results": %d}}' % len(found))
"""


@dataclass
class Suite:
    workdir: Path
    sizes: Sizes
    quick: bool
    hone_python: str
    mlflow_python: str | None

    def trial(self, side: str, bench: str, *args: str) -> Callable[[int], Trial]:
        """A trial of ``bench`` on ``side`` ('hone', 'mlflow' or 'mlflow_wal') in a new folder."""
        mlflow = side.startswith("mlflow")
        script = "bench_mlflow.py" if mlflow else "bench_hone.py"
        exe = self.mlflow_python if mlflow else self.hone_python
        assert exe is not None
        extra = [*args, *(["--quick"] if self.quick else [])]
        if side == "mlflow_wal":
            extra.append("--sqlite=wal")

        def run(r: int) -> Trial:
            folder = self.workdir / f"{bench}-{side}-{r}"
            try:
                return spawn(
                    [exe, str(HERE / script), str(folder), f"--only={bench}", *extra], side, HERE
                )
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        return run

    def sides(self, bench: str, *names: str) -> dict[str, Callable[[int], Trial]]:
        names = tuple(n for n in names if self.mlflow_python or not n.startswith("mlflow"))
        return {name: self.trial(name, bench) for name in names}

    def has_mlflow(self) -> bool:
        return self.mlflow_python is not None

    # The benchmarks ---------------------------------------------------------------------

    def metric_throughput(self) -> dict[str, Any]:
        sides = self.sides("metric_throughput", "hone", "mlflow", "mlflow_wal")
        rounds = interleaved(sides, self.sizes.pairs, "1 metric throughput")
        ratios: dict[str, Callable[[dict[str, Trial]], float]] = {}
        if self.has_mlflow():
            ratios = {
                "log_metric": _ratio_fn("hone", "points_per_s", "mlflow", "log_metric_per_s"),
                "log_batch": _ratio_fn("hone", "points_per_s", "mlflow", "log_batch_per_s"),
                "log_metric_wal": _ratio_fn(
                    "hone", "points_per_s", "mlflow_wal", "log_metric_per_s"
                ),
                "log_batch_wal": _ratio_fn("hone", "points_per_s", "mlflow_wal", "log_batch_per_s"),
            }
        return summarize(rounds, "metric_throughput", ratios)

    def training_overhead(self) -> dict[str, Any]:
        rounds = interleaved(
            self.sides("training_overhead", "hone", "mlflow"),
            self.sizes.pairs,
            "2 training overhead",
        )
        return summarize(rounds, "training_overhead", {})

    def run_lifecycle(self) -> dict[str, Any]:
        rounds = interleaved(
            self.sides("run_lifecycle", "hone", "mlflow"), self.sizes.cheap_pairs, "2 run start/end"
        )
        ratios: dict[str, Callable[[dict[str, Trial]], float]] = {}
        if self.has_mlflow():
            ratios = {
                "start": _ratio_fn("mlflow", "start_ms", "hone", "start_ms"),
                "end": _ratio_fn("mlflow", "end_ms", "hone", "end_ms"),
            }
        return summarize(rounds, "run_lifecycle", ratios)

    def create_runs(self) -> dict[str, Any]:
        sides = self.sides("create_runs", "hone", "mlflow", "mlflow_wal")
        rounds = interleaved(sides, self.sizes.pairs, "3 run creation")
        ratios: dict[str, Callable[[dict[str, Trial]], float]] = {}
        if self.has_mlflow():
            ratios = {
                "runs": _ratio_fn("hone", "runs_per_s", "mlflow", "runs_per_s"),
                "runs_wal": _ratio_fn("hone", "runs_per_s", "mlflow_wal", "runs_per_s"),
                "mlflow_wal_gain": _ratio_fn("mlflow_wal", "runs_per_s", "mlflow", "runs_per_s"),
            }
        return summarize(rounds, "create_runs", ratios)

    def search(self) -> dict[str, Any]:
        """Search trials read one store per side, built once (its build is not a figure)."""
        stores = {"hone": self.workdir / "search-hone", "mlflow": self.workdir / "search-mlflow"}
        built: dict[str, Any] = {}
        for side in ("hone", "mlflow") if self.has_mlflow() else ("hone",):
            print(f"  building the {side} store of {self.sizes.search_runs:,} runs ...", flush=True)
            script = "bench_mlflow.py" if side == "mlflow" else "bench_hone.py"
            exe = self.mlflow_python if side == "mlflow" else self.hone_python
            assert exe is not None
            args = ["--quick"] if self.quick else []
            cmd = [exe, str(HERE / script), str(stores[side]), "--only=search_store", *args]
            built[side] = spawn(cmd, side, HERE).results["search_store"]
        in_process = {side: self._search_trial(side, stores[side], "search") for side in built}
        fresh = {f"{side}_fresh": self._search_trial(side, stores[side], "fresh") for side in built}
        rounds = interleaved({**in_process, **fresh}, self.sizes.cheap_pairs, "3 search")
        for store in stores.values():
            shutil.rmtree(store, ignore_errors=True)
        ratios: dict[str, Callable[[dict[str, Trial]], float]] = {}
        if self.has_mlflow():
            ratios = {
                "warm": _ratio_fn("mlflow", "warm_ms", "hone", "warm_ms"),
                "first_in_process": _ratio_fn("mlflow", "first_ms", "hone", "first_ms"),
                "fresh_process": lambda row: row["mlflow_fresh"].wall_s / row["hone_fresh"].wall_s,
            }
        summary = summarize(rounds, "search", ratios)
        summary["store_build"] = built
        return summary

    def _search_trial(self, side: str, store: Path, kind: str) -> Callable[[int], Trial]:
        exe = self.mlflow_python if side == "mlflow" else self.hone_python
        assert exe is not None
        if kind == "fresh":  # import + search, timed by the parent from spawn to exit
            code, target = (
                (FRESH_MLFLOW, store / "mlflow.db")
                if side == "mlflow"
                else (
                    FRESH_HONE,
                    store / "ws",
                )
            )
            cmd = [exe, "-c", code, str(target)]
        else:
            script = "bench_mlflow.py" if side == "mlflow" else "bench_hone.py"
            cmd = [exe, str(HERE / script), str(store), "--only=search"]
            cmd += ["--quick"] if self.quick else []
        return lambda r: spawn(cmd, side if kind != "fresh" else f"{side}_fresh", HERE)

    def memory(self) -> dict[str, Any]:
        sides: dict[str, Callable[[int], Trial]] = {}
        for points in self.sizes.memory_points:
            sides[f"hone_{points}"] = self.trial("hone", "memory", f"--points={points}")
        if self.has_mlflow():
            top = max(self.sizes.memory_points)
            sides["mlflow"] = self.trial("mlflow", "memory", f"--points={top}")
        rounds = interleaved(sides, self.sizes.pairs, "8 bounded memory")
        ratios: dict[str, Callable[[dict[str, Trial]], float]] = {}
        if self.has_mlflow():
            for points in self.sizes.memory_points:
                ratios[f"hone_{points}_vs_log_metric"] = _ratio_fn(
                    f"hone_{points}", "points_per_s", "mlflow", "log_metric_per_s"
                )
        return summarize(rounds, "memory", ratios)


def _r(row: dict[str, Trial], side_a: str, key_a: str, side_b: str, key_b: str) -> float:
    a = float(row[side_a].results[_bench_of(row[side_a])][key_a])
    b = float(row[side_b].results[_bench_of(row[side_b])][key_b])
    return a / b


def _ratio_fn(
    side_a: str, key_a: str, side_b: str, key_b: str
) -> Callable[[dict[str, Trial]], float]:
    return lambda row: _r(row, side_a, key_a, side_b, key_b)


def _bench_of(trial: Trial) -> str:
    (bench,) = trial.results
    return bench


def flatten(result: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def summarize(
    rounds: list[dict[str, Trial]],
    bench: str,
    ratios: dict[str, Callable[[dict[str, Trial]], float]],
) -> dict[str, Any]:
    """Per side: every numeric figure's median, range and values over rounds, with the
    trial's wall time and peak RSS (from the kernel); other values as seen. Then the
    per-round ratios' median and range."""
    sides: dict[str, dict[str, Any]] = {}
    for side in rounds[0]:
        rows = [flatten(_only(row[side].results, bench)) for row in rounds]
        figures: dict[str, Any] = {}
        for key in rows[0]:
            values = [row.get(key) for row in rows]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            figures[key] = (
                spread([float(v) for v in values if v is not None])
                if numeric
                else sorted({str(v) for v in values})
            )
        figures["trial_wall_s"] = spread([row[side].wall_s for row in rounds])
        peaks = [p for row in rounds if (p := row[side].own_peak_rss_mib) is not None]
        figures["trial_peak_rss_mib"] = spread(peaks) if peaks else None
        sides[side] = figures
    return {
        "rounds": len(rounds),
        "order": [list(row) for row in rounds],
        "sides": sides,
        "ratios": {name: pair_ratios(rounds, fn) for name, fn in ratios.items()},
    }


def _only(results: dict[str, dict[str, Any]], bench: str) -> dict[str, Any]:
    # A fresh-process search prints "fresh_search"; every other trial prints ``bench``.
    return results.get(bench) or next(iter(results.values()))
