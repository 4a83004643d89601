"""Run every benchmark, hone beside MLflow in the same run, and print the ratios.

    python benchmarks/run_all.py [--quick] [--skip-mlflow]

MLflow lives in its own environment (.venv-mlflow, created here from
requirements-mlflow.txt) so that its dependencies never touch hone's. Results are printed
as a table and written to benchmarks/out/results.json; docs/benchmarks.md records them.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MLFLOW_VENV = ROOT / ".venv-mlflow"
TARGETS = {
    "log_metric_ratio": 1000.0,
    "log_batch_ratio": 20.0,
    "overhead_pct": 2.0,
    "runs_ratio": 20.0,
    "search_ratio": 10.0,
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


BENCHES = ("metric_throughput", "training_overhead", "runs_and_search")
DATA_BENCHES = ("data_append", "data_adapter", "data_import")


def collect(cmd: list[str], label: str) -> dict[str, dict[str, Any]]:
    print(f"running {label} ...", flush=True)
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{label} failed with exit code {done.returncode}")
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            results[result.pop("bench")] = result
    print(f"  {label} took {time.perf_counter() - started:.0f} s", flush=True)
    return results


def collect_each(
    python: str,
    script: str,
    workdir: Path,
    extra: list[str],
    label: str,
    benches: tuple[str, ...] = BENCHES,
) -> dict[str, dict[str, Any]]:
    """One fresh interpreter per benchmark: no threads or caches carried between them
    (PyTorch's OpenMP workers keep spinning after a training loop, for one)."""
    results: dict[str, dict[str, Any]] = {}
    for bench in benches:
        results.update(
            collect(
                [python, str(HERE / script), str(workdir / bench), *extra, f"--only={bench}"],
                f"{label}: {bench}",
            )
        )
    return results


def data_rows(data: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    """The sample library's benchmarks (issue 3), against their own baselines."""
    a, t, i = data["data_append"], data["data_adapter"], data["data_import"]
    return [
        (
            f"5 append 1% ({a['appended']:,} rows) to {a['rows']:,}: new bytes / version",
            f"{100 * a['bytes_ratio']:.2f}%",
            "",
            "<= 3%",
            verdict(a["bytes_ratio"] <= 0.03),
        ),
        (
            "  append time / full import",
            f"{100 * a['time_ratio']:.2f}%",
            f"{a['append_s']:.2f} s / {a['import_s']:.2f} s",
            "<= 10%",
            verdict(a["time_ratio"] <= 0.10),
        ),
        (
            f"6 loader over {t['rows']:,} x 64 float32, batch 256, vs NumPy",
            f"{t['loader_samples_per_s']:,.0f}/s",
            f"{t['numpy_batched_samples_per_s']:,.0f}/s",
            ">= 50%",
            verdict(t["loader_ratio"] >= 0.5),
        ),
        ("  ratio", f"{100 * t['loader_ratio']:.0f}%", "", "", ""),
        (
            f"  DataLoader over ds.torch(), {t['per_sample_rows']:,} samples, vs NumPy",
            f"{t['torch_dataset_samples_per_s']:,.0f}/s",
            f"{t['numpy_dataset_samples_per_s']:,.0f}/s",
            ">= 50%",
            verdict(t["torch_dataset_ratio"] >= 0.5),
        ),
        (
            f"7 import {i['rows']:,} rows x {i['columns']}: CSV rows/s (pandas read+to_parquet)",
            f"{i['hone_csv_rows_per_s']:,.0f}",
            f"{i['pandas_csv_rows_per_s']:,.0f}",
            "",
            "",
        ),
        (
            "  Parquet rows/s (pandas read+to_parquet)",
            f"{i['hone_parquet_rows_per_s']:,.0f}",
            f"{i['pandas_parquet_rows_per_s']:,.0f}",
            "",
            "",
        ),
    ]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    quick = "--quick" in sys.argv
    extra = ["--quick"] if quick else []
    workdir = Path(tempfile.mkdtemp(prefix="hone-bench-", dir=ROOT / "benchmarks"))
    try:
        hone = collect_each(sys.executable, "bench_hone.py", workdir / "hone", extra, "hone")
        data = collect_each(
            sys.executable, "bench_data.py", workdir / "data", extra, "data", DATA_BENCHES
        )
        kill9 = collect(
            [sys.executable, str(HERE / "bench_kill9.py"), str(workdir / "kill9"), *extra],
            "kill -9",
        )["kill9"]
        mlflow: dict[str, dict[str, Any]] = {}
        if "--skip-mlflow" not in sys.argv:
            python = ensure_mlflow()
            mlflow = collect_each(
                str(python), "bench_mlflow.py", workdir / "mlflow", extra, "MLflow"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(hone, mlflow, kill9, data, quick)


def report(
    hone: dict[str, dict[str, Any]],
    mlflow: dict[str, dict[str, Any]],
    kill9: dict[str, Any],
    data: dict[str, dict[str, Any]],
    quick: bool,
) -> None:
    rows: list[tuple[str, str, str, str, str]] = []
    summary: dict[str, Any] = {
        "hone": hone,
        "mlflow": mlflow,
        "kill9": kill9,
        "data": data,
        "quick": quick,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "date": time.strftime("%F"),
    }
    t, m = hone["metric_throughput"], mlflow.get("metric_throughput")
    rows.append(
        (
            "1 log_metric loop, points/s into the store",
            f"{t['points_per_s']:,.0f}",
            f"{m['log_metric_per_s']:,.0f}" if m else "-",
            "",
            "",
        )
    )
    if m:
        r1 = t["points_per_s"] / m["log_metric_per_s"]
        r2 = t["points_per_s"] / m["log_batch_per_s"]
        summary["log_metric_ratio"], summary["log_batch_ratio"] = r1, r2
        rows.append(
            (
                "  ratio to MLflow log_metric",
                f"{r1:,.0f}x",
                "",
                f">= {TARGETS['log_metric_ratio']:.0f}x",
                verdict(r1 >= TARGETS["log_metric_ratio"]),
            )
        )
        rows.append(
            (
                "  ratio to MLflow log_batch(1000)",
                f"{r2:,.1f}x",
                f"{m['log_batch_per_s']:,.0f}/s",
                f">= {TARGETS['log_batch_ratio']:.0f}x",
                verdict(r2 >= TARGETS["log_batch_ratio"]),
            )
        )
    o, mo = hone["training_overhead"], mlflow.get("training_overhead")
    rows.append(
        (
            "2 per-step logging overhead (4 metrics)",
            f"{o['hone_overhead_pct']:+.2f}%",
            f"{mo['mlflow_overhead_pct']:+.1f}% (async {mo['mlflow_async_overhead_pct']:+.1f}%)"
            if mo
            else "-",
            f"<= {TARGETS['overhead_pct']:.0f}%",
            verdict(o["hone_overhead_pct"] <= TARGETS["overhead_pct"]),
        )
    )
    rows.append(
        (
            "  control: a no-op callback (noise floor)",
            f"{o['control_overhead_pct']:+.2f}%",
            "",
            "",
            "",
        )
    )
    rows.append(
        (
            "  baseline loop, steps/s",
            f"{o['baseline_steps_per_s']:.1f}",
            f"{mo['baseline_steps_per_s']:.1f}" if mo else "-",
            "",
            "",
        )
    )
    s, ms = hone["runs_and_search"], mlflow.get("runs_and_search")
    rows.append(
        (
            f"3 create {s['runs']:,} runs (10 params, 10 metrics), runs/s",
            f"{s['runs_per_s']:,.0f}",
            f"{ms['runs_per_s']:,.1f}" if ms else "-",
            "",
            "",
        )
    )
    if ms:
        r3 = s["runs_per_s"] / ms["runs_per_s"]
        r4 = ms["search_ms"] / s["search_ms"]
        summary["runs_ratio"], summary["search_ratio"] = r3, r4
        rows.append(
            (
                "  ratio",
                f"{r3:.1f}x",
                "",
                f">= {TARGETS['runs_ratio']:.0f}x",
                verdict(r3 >= TARGETS["runs_ratio"]),
            )
        )
        rows.append(
            (
                f"  search_runs two-clause filter, ms ({s['search_results']} results)",
                f"{s['search_ms']:.1f}",
                f"{ms['search_ms']:.1f}",
                "",
                "",
            )
        )
        rows.append(
            (
                "  speed-up",
                f"{r4:.1f}x",
                "",
                f">= {TARGETS['search_ratio']:.0f}x",
                verdict(r4 >= TARGETS["search_ratio"]),
            )
        )
        rows.append(
            (
                "  hone's first search in a fresh process, ms",
                f"{s['cold_search_ms']:.1f}",
                "",
                "",
                "",
            )
        )
    rows.append(
        (
            f"4 kill -9 mid-logging ({kill9['target_points']:,} points)",
            f"journal {kill9['journaled']:,}",
            f"store {kill9['stored_after_sync']:,}",
            "0 lost",
            verdict(kill9["lost"] == 0 and kill9["journaled"] > 0),
        )
    )
    rows.extend(data_rows(data))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    header = ("benchmark", "hone", "MLflow or baseline", "target", "")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten to {out / 'results.json'}")


if __name__ == "__main__":
    main()
