"""The sample library's benchmark script still runs (at smoke sizes) and reports sane figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_benchmarks import bench_results


@pytest.mark.slow
def test_data_benchmarks_run(tmp_path: Path) -> None:
    found = bench_results("bench_data.py", tmp_path)
    assert set(found) == {"data_append", "data_adapter", "data_import"}
    append = found["data_append"]
    assert 0 < float(append["bytes_ratio"]) < 0.05  # type: ignore[arg-type]
    assert float(found["data_adapter"]["loader_samples_per_s"]) > 0  # type: ignore[arg-type]
