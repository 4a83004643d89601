"""Run every benchmark, hone and MLflow interleaved, and write a traceable results file.

    python benchmarks/run_all.py [--quick] [--skip-mlflow] [--only=NAME,...] [--out=FILE]
                                 [--pairs=N]  (rounds of the train, tune and models benchmarks)

Each trial is a fresh process; hone's and MLflow's trials of a benchmark alternate
(suite.py). MLflow lives in its own environment (.venv-mlflow, created here from
requirements-mlflow.txt) so that its dependencies never touch hone's. A full run writes
benchmarks/results/DATE-COMMIT.json (the commit, whether the tree was dirty, the machine,
package versions, every trial's figures); docs/benchmarks.md quotes such a file. A quick
run is a smoke test: benchmarks/out/results-quick.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from provenance import provenance, results_path
from render import print_table, table
from suite import Suite
from trials import TrialFailed, spawn
from workloads import Sizes, option

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MLFLOW_VENV = ROOT / ".venv-mlflow"
#: bench_data.py's benchmarks; one it does not know (yet) is skipped with a note.
DATA_BENCHES = ("data_append", "data_adapter", "data_import", "data_import_10m")
#: bench_train.py's benchmarks.
TRAIN_BENCHES = ("train_loop", "train_scaling", "train_restart")
#: bench_tune.py's benchmarks.
TUNE_BENCHES = ("tune_trial_cost", "tune_digits")
#: bench_models.py's benchmarks.
MODELS_BENCHES = ("models_predict",)
#: bench_serve.py's benchmarks.
SERVE_BENCHES = ("serve_http", "serve_memory")
#: bench_ui.py's benchmarks.
UI_BENCHES = ("ui_runs", "ui_chart")
#: The scripts that schedule their own trials, their benchmarks, and whether they take
#: MLflow's interpreter (--mlflow-python) for a side of their own.
SCRIPTS = {
    "bench_train.py": (TRAIN_BENCHES, True),
    "bench_tune.py": (TUNE_BENCHES, False),
    "bench_models.py": (MODELS_BENCHES, True),
    "bench_serve.py": (SERVE_BENCHES, True),
    "bench_ui.py": (UI_BENCHES, True),
}


def ensure_mlflow() -> Path:
    python = MLFLOW_VENV / "bin" / "python"
    stamp = MLFLOW_VENV / ".installed"
    requirements = HERE / "requirements-mlflow.txt"
    if stamp.exists() and stamp.stat().st_mtime >= requirements.stat().st_mtime:
        return python
    print("creating .venv-mlflow (MLflow for the side-by-side runs) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
    stamp.touch()
    return python


def data_benchmarks(workdir: Path, quick: bool) -> dict[str, dict[str, Any]]:
    """The sample library's benchmarks (bench_data.py), against their own baselines: one
    process per benchmark, as that script arranges its own repetitions."""
    results: dict[str, dict[str, Any]] = {}
    for bench in DATA_BENCHES:
        print(f"running data: {bench} ...", flush=True)
        cmd = [sys.executable, str(HERE / "bench_data.py"), str(workdir / bench), f"--only={bench}"]
        try:
            trial = spawn([*cmd, *(["--quick"] if quick else [])], "hone", HERE)
        except TrialFailed as exc:
            if "no such benchmark" not in str(exc):
                raise
            print(f"  skipped: bench_data.py has no {bench}", flush=True)
            continue
        peak = trial.own_peak_rss_mib
        print(f"  took {trial.wall_s:.0f} s, peak {peak or 0:.0f} MiB", flush=True)
        for name, result in trial.results.items():
            results[name] = {
                **result,
                "trial_wall_s": trial.wall_s,
                "trial_peak_rss_mib": trial.own_peak_rss_mib,
            }
    return results


def split_cache(workdir: Path, quick: bool) -> dict[str, Any]:
    """Two ranks reading one split, with the machine's split cache off, cold and warm."""
    print("running split cache ...", flush=True)
    cmd = [sys.executable, str(HERE / "bench_split_cache.py"), str(workdir / "split_cache")]
    trial = spawn([*cmd, *(["--quick"] if quick else [])], "hone", HERE)
    result: dict[str, Any] = trial.results["split_cache"]
    return result


def train_benchmarks(
    workdir: Path, quick: bool, mlflow: str | None, script: str = "bench_train.py"
) -> dict[str, dict[str, Any]]:
    """The training engine's benchmarks (bench_train.py), tuning's (bench_tune.py) or
    serving's (bench_models.py, bench_serve.py): one process per benchmark, which spawns
    and interleaves its own trials (hone, plain PyTorch, Optuna, onnxruntime, MLflow)."""
    results: dict[str, dict[str, Any]] = {}
    benches, takes_mlflow = SCRIPTS[script]
    for bench in benches:
        print(f"running {script}: {bench} ...", flush=True)
        cmd = [sys.executable, str(HERE / script), str(workdir), f"--only={bench}"]
        if mlflow and takes_mlflow:
            cmd.append(f"--mlflow-python={mlflow}")
        if option("pairs"):  # more rounds than the default, passed on
            cmd.append(f"--pairs={option('pairs')}")
        done = subprocess.run(
            [*cmd, *(["--quick"] if quick else [])], cwd=HERE, text=True, stdout=subprocess.PIPE
        )
        for line in done.stdout.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
                results[result.pop("bench")] = result
            elif line.strip():
                print(line, flush=True)
        if done.returncode:  # the others still run; the results file says which failed
            print(f"  {script} --only={bench} failed (exit {done.returncode})", flush=True)
            results[bench] = {"failed": f"exit {done.returncode}"}
    return results


def kill9(workdir: Path, quick: bool) -> dict[str, Any]:
    print("running kill -9 ...", flush=True)
    cmd = [sys.executable, str(HERE / "bench_kill9.py"), str(workdir / "kill9")]
    done = subprocess.run(
        [*cmd, *(["--quick"] if quick else [])], capture_output=True, text=True, cwd=HERE
    )
    sys.stderr.write(done.stderr)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise SystemExit(f"bench_kill9.py printed no result (exit {done.returncode})")


STEPS = (
    "metric_throughput",
    "training_overhead",
    "run_lifecycle",
    "create_runs",
    "search",
    "kill9",
    "memory",
    "data",
    "split_cache",
    "train",
    "tune",
    "models",
    "serve",
    "ui",
)


def selected_steps() -> list[str]:
    only = option("only")
    if only is None:
        return list(STEPS)
    chosen = only.split(",")
    unknown = [name for name in chosen if name not in STEPS]
    if unknown:
        raise SystemExit(f"--only: no benchmark {', '.join(unknown)} (from {', '.join(STEPS)})")
    return [name for name in STEPS if name in chosen]


def run_step(
    name: str, suite: Suite, workdir: Path, quick: bool, mlflow: str | None
) -> dict[str, Any]:
    if name == "train":
        return train_benchmarks(workdir / "train", quick, mlflow)
    if name == "tune":
        return train_benchmarks(workdir / "tune", quick, mlflow, "bench_tune.py")
    if name == "models":
        return train_benchmarks(workdir / "models", quick, mlflow, "bench_models.py")
    if name == "serve":
        return train_benchmarks(workdir / "serve", quick, mlflow, "bench_serve.py")
    if name == "ui":
        return train_benchmarks(workdir / "ui", quick, mlflow, "bench_ui.py")
    if name == "kill9":
        return kill9(workdir, quick)
    if name == "data":
        return data_benchmarks(workdir / "data", quick)
    if name == "split_cache":
        return split_cache(workdir, quick)
    result: dict[str, Any] = getattr(suite, name)()
    return result


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = Sizes.quick() if quick else Sizes()
    steps = selected_steps()
    mlflow_python = None if "--skip-mlflow" in sys.argv else ensure_mlflow()
    started = time.perf_counter()
    record: dict[str, Any] = {
        "provenance": provenance(ROOT, mlflow_python),
        "quick": quick,
        "steps": steps,
        "sizes": asdict(sizes),
    }
    workdir = Path(tempfile.mkdtemp(prefix="hone-bench-", dir=HERE))
    mlflow = str(mlflow_python) if mlflow_python else None
    suite = Suite(workdir, sizes, quick, sys.executable, mlflow)
    b: dict[str, Any] = {}
    record["benchmarks"] = b
    failed: list[str] = []
    try:
        for name in steps:
            try:
                b[name] = run_step(name, suite, workdir, quick, mlflow)
            except (Exception, SystemExit) as exc:  # one benchmark's failure loses no other
                print(f"{name} FAILED: {str(exc)[-2000:]}", flush=True)
                b[name] = {"failed": str(exc)[-2000:]}
                failed.append(name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    record["elapsed_s"] = time.perf_counter() - started
    record["provenance"]["load_average_at_end"] = list(os.getloadavg())
    print()
    print_table(table(b, asdict(sizes)))
    out = option("out")
    path = Path(out) if out else results_path(ROOT, record["provenance"], quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    info = record["provenance"]
    print(
        f"\n{'quick' if quick else 'full'} run took {record['elapsed_s'] / 60:.1f} min; "
        f"commit {str(info['commit'])[:12]}{' (dirty tree)' if info['dirty'] else ''}; "
        f"written to {path}"
    )
    print("Figures: median [min-max] over trials; ratios: median [min-max] of per-round ratios.")
    if b.get("kill9", {}).get("failed"):
        raise SystemExit("kill -9 check FAILED: acknowledged points were lost")
    failed += [f"train/{k}" for k, v in b.get("train", {}).items() if "failed" in v]
    failed += [f"tune/{k}" for k, v in b.get("tune", {}).items() if "failed" in v]
    failed += [f"models/{k}" for k, v in b.get("models", {}).items() if "failed" in v]
    failed += [f"serve/{k}" for k, v in b.get("serve", {}).items() if "failed" in v]
    failed += [f"ui/{k}" for k, v in b.get("ui", {}).items() if "failed" in v]
    if failed:
        raise SystemExit(f"benchmarks FAILED: {', '.join(failed)} (the others are recorded)")


if __name__ == "__main__":
    main()
