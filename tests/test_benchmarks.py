"""The benchmark scripts still run (at smoke sizes) and report sane figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def bench_results(script: str, workdir: Path, *args: str) -> dict[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), str(workdir), "--quick", *args],
        capture_output=True,
        text=True,
        cwd=BENCH,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = {}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            found[str(result.pop("bench"))] = result
    return found


@pytest.mark.slow
def test_hone_benchmarks_run(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    found = bench_results("bench_hone.py", tmp_path)
    assert set(found) == {"metric_throughput", "training_overhead", "runs_and_search"}
    assert float(found["metric_throughput"]["points_per_s"]) > 0  # type: ignore[arg-type]
    assert found["runs_and_search"]["search_results"] == 38  # the same runs every time


@pytest.mark.slow
def test_kill9_benchmark_loses_nothing(tmp_path: Path) -> None:
    found = bench_results("bench_kill9.py", tmp_path)["kill9"]
    assert found["lost"] == 0 and int(found["journaled"]) > 0  # type: ignore[call-overload]
    assert found["run_status"] == "killed"


def test_unknown_benchmark_names_are_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_hone.py"), str(tmp_path), "--only=nope"],
        capture_output=True,
        text=True,
        cwd=BENCH,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "no such benchmark" in done.stderr
