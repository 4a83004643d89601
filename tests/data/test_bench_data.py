"""The sample library's benchmark script still runs (at smoke sizes) and reports sane figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_benchmarks import bench_results


def _side(result: dict[str, Any], side: str, rows: int) -> None:
    """One side of an import comparison: every round's figures, and consistent."""
    figures = result[side]
    for key in ("seconds", "rows_per_s", "trial_wall_s", "peak_rss_mib", "baseline_rss_mib"):
        assert len(figures[key]["values"]) == 3, key  # three fresh-process rounds
        assert figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"]
    assert figures["rows_per_s"]["median"] == pytest.approx(rows / figures["seconds"]["median"])
    assert figures["peak_rss_mib"]["min"] > figures["baseline_rss_mib"]["max"] > 0
    assert figures["trial_wall_s"]["min"] > figures["seconds"]["max"]  # spawn-to-exit


@pytest.mark.slow
def test_data_benchmarks_run(tmp_path: Path) -> None:
    found = bench_results("bench_data.py", tmp_path)
    assert set(found) == {"data_append", "data_adapter", "data_import", "data_import_1m"}
    append = found["data_append"]
    assert 0 < float(append["bytes_ratio"]) < 0.05  # type: ignore[arg-type]
    assert float(found["data_adapter"]["loader_samples_per_s"]) > 0  # type: ignore[arg-type]
    imported: dict[str, Any] = found["data_import"]
    for kind in ("csv", "parquet"):
        for side in ("hone", "pandas"):
            _side(imported[kind], side, int(imported["rows"]))
        ratios = imported[kind]["speed_ratio"]["values"]
        assert len(ratios) == 3 and all(r > 0 for r in ratios)
        # each hone trial imported into a fresh workspace: its chunk(s) and manifest
        assert imported[kind]["hone"]["blobs"] >= 2
    wide: dict[str, Any] = found["data_import_1m"]
    assert wide["columns"] == 65 and wide["source_bytes"] > 0
    _side(wide, "hone", int(wide["rows"]))
    _side(wide, "pandas", int(wide["rows"]))


@pytest.mark.slow
def test_huge_import_benchmark_runs_when_named(tmp_path: Path) -> None:
    found = bench_results("bench_data.py", tmp_path, "--only=data_import_10m")
    assert set(found) == {"data_import_10m"}
    huge: dict[str, Any] = found["data_import_10m"]
    _side(huge, "hone", int(huge["rows"]))
    assert "pandas" not in huge and not list(tmp_path.glob("*.csv"))  # the file is deleted
