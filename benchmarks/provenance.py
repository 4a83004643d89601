"""Where a results file came from: date, commit, machine, package versions.

A figure quoted in docs/benchmarks.md points at a results file; this is what makes the
file traceable to the code and the machine that produced it.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("hone", "torch", "pyarrow", "pandas", "numpy", "sqlalchemy", "optuna")

# Run in MLflow's environment: its versions are the ones its trials ran with.
_MLFLOW_PROBE = """
import json, platform, sqlite3
from importlib import metadata
print(json.dumps({"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
    **{p: metadata.version(p) for p in ("mlflow", "sqlalchemy", "torch")}}))
"""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    return done.stdout.rstrip() if done.returncode == 0 else ""


def commit_info(root: Path) -> dict[str, Any]:
    """HEAD and whether the tree differs from it, new files included (figures from a dirty
    tree say so, and which files)."""
    status = git(root, "status", "--porcelain")
    return {
        "commit": git(root, "rev-parse", "HEAD") or None,
        "dirty": bool(status),
        "dirty_files": status.splitlines()[:50],
    }


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average": os.getloadavg(),
    }


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def mlflow_versions(python: Path | None) -> dict[str, Any] | None:
    if python is None:
        return None
    done = subprocess.run(
        [str(python), "-c", _MLFLOW_PROBE], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-500:]}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def provenance(root: Path, mlflow_python: Path | None) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d"),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        **commit_info(root),
        "machine": machine(),
        "versions": versions(),
        "mlflow_environment": mlflow_versions(mlflow_python),
    }


def results_path(root: Path, info: dict[str, Any], quick: bool) -> Path:
    """benchmarks/results/DATE-COMMIT.json for a full run (committed when the docs quote
    it); a quick run is a smoke test and goes to benchmarks/out/, which git ignores."""
    if quick:
        return root / "benchmarks" / "out" / "results-quick.json"
    commit = (info.get("commit") or "nocommit")[:12]
    suffix = "-dirty" if info.get("dirty") else ""
    return root / "benchmarks" / "results" / f"{info['date']}-{commit}{suffix}.json"
