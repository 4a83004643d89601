"""Turn a results file into the table: as text (what make bench prints) or Markdown.

    python benchmarks/render.py benchmarks/results/DATE-COMMIT.json [--markdown]

docs/benchmarks.md quotes figures from a results file; this prints them the same way
every time, so no figure is copied by hand.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report import (
    Row,
    kill9_rows,
    lifecycle_rows,
    memory_rows,
    overhead_rows,
    runs_rows,
    search_rows,
    throughput_rows,
)
from report_data import data_rows
from report_models import models_rows
from report_serve import serve_rows
from report_train import train_rows
from report_tune import tune_rows
from report_ui import ui_rows


def table(b: dict[str, Any], sizes: dict[str, Any]) -> list[Row]:
    """Rows for every benchmark the results hold, in the order of the docs."""
    builders: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
        "metric_throughput": throughput_rows,
        "training_overhead": overhead_rows,
        "run_lifecycle": lifecycle_rows,
        "create_runs": lambda s: runs_rows(s, sizes["create_runs"]),
        "search": lambda s: search_rows(s, sizes["search_runs"]),
        "kill9": kill9_rows,
        "data": data_rows,
        "split_cache": lambda s: data_rows({"split_cache": s}),
        "memory": lambda s: memory_rows(s, tuple(sizes["memory_points"])),
        "train": train_rows,
        "tune": tune_rows,
        "models": models_rows,
        "serve": serve_rows,
        "ui": ui_rows,
    }
    rows: list[Row] = []
    for name, build in builders.items():
        if name not in b:
            continue
        if isinstance(b[name].get("failed"), str):  # a step that crashed: say so
            rows.append((f"{name}: FAILED", b[name]["failed"][-120:], "", "", "", "MISS"))
            continue
        rows += build(b[name])
    return rows


HEADER: Row = ("benchmark", "hone", "MLflow or baseline", "ratio", "target", "")


def print_table(rows: list[Row]) -> None:
    widths = [max(len(row[i]) for row in (HEADER, *rows)) for i in range(len(HEADER))]
    for row in (HEADER, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def print_markdown(rows: list[Row]) -> None:
    print("| " + " | ".join(HEADER[:5]) + " |")
    print("|" + " --- |" * 5)
    for row in rows:
        name, *cells, target, verdict = row
        target = f"{target} {verdict}".strip()
        name = f"· {name.strip()}" if name.startswith(" ") else name
        print(
            "| " + " | ".join(c.replace("|", "\\|") for c in (name.strip(), *cells, target)) + " |"
        )


def describe(record: dict[str, Any]) -> str:
    info = record["provenance"]
    machine = info["machine"]
    versions = info["versions"]
    mlflow = info.get("mlflow_environment") or {}
    return (
        f"{info['date']}, commit {str(info['commit'])[:12]}"
        f"{' (dirty tree)' if info['dirty'] else ''}, {machine['cores']} cores, "
        f"{machine['ram_gib']} GiB, load {machine['load_average'][0]:.1f} at the start; "
        f"Python {versions['python']}, SQLite {versions['sqlite']}, hone {versions['hone']}, "
        f"PyTorch {versions['torch']}, pyarrow {versions['pyarrow']}, pandas {versions['pandas']}, "
        f"MLflow {mlflow.get('mlflow', '-')}; {'quick' if record['quick'] else 'full'} run, "
        f"{record['elapsed_s'] / 60:.1f} min"
    )


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: render.py RESULTS.json [--markdown]")
    record = json.loads(Path(sys.argv[1]).read_text())
    rows = table(record["benchmarks"], record["sizes"])
    print(describe(record))
    print()
    (print_markdown if "--markdown" in sys.argv else print_table)(rows)


if __name__ == "__main__":
    main()
