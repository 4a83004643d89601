"""The HTTP serving benchmark runs (at smoke size) and measures what it says: every side
answered every request, the ratios follow from the sides' figures, and the memory part
stored every prediction it recorded. (MLflow's side needs .venv-mlflow, made by
``make bench``: it runs in the full benchmark, not here.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_benchmarks import QUICK, quick_results

pytestmark = pytest.mark.slow


def need_wrk() -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk must be installed in CI (.ci/run installs it)")
        pytest.skip("wrk is not installed (apt-get install wrk)")


def test_the_http_benchmark_drives_every_side_with_wrk(tmp_path: Path) -> None:
    need_wrk()
    found = quick_results("bench_serve.py", tmp_path)
    http = found["serve_http"]
    assert set(http["sides"]) == {"hone", "hone_norecord", "bare"}
    assert http["model"] == "digits@1" and http["seconds"] == QUICK.serve_seconds
    for name, side in http["sides"].items():
        for c in (1, 16):
            assert side[f"c{c}_rps"]["median"] > 50, name
            assert 0 < side[f"c{c}_p50_ms"]["median"] <= side[f"c{c}_p99_ms"]["median"], name
        assert side["peak_rss_mib"]["median"] > 20, name
    sides = http["sides"]
    for c in (1, 16):
        assert http["ratios"][f"vs_bare_c{c}"]["median"] == pytest.approx(
            sides["hone"][f"c{c}_rps"]["median"] / sides["bare"][f"c{c}_rps"]["median"]
        )
        assert http["ratios"][f"record_vs_norecord_c{c}"]["median"] == pytest.approx(
            sides["hone"][f"c{c}_rps"]["median"] / sides["hone_norecord"][f"c{c}_rps"]["median"]
        )
    for name, aim in http["aims"].items():
        if name in http["ratios"]:
            assert http["passed"][name] == (http["ratios"][name]["median"] >= aim)
    assert http["session_predictions_per_s"]["median"] > 1000
    memory = found["serve_memory"]
    assert memory["recorded"] >= QUICK.memory_predictions
    assert memory["all_stored"] and memory["stored_after_stop"] == memory["recorded"]
    assert memory["peak_rss_mib"] >= memory["rss_at_end_mib"] > 20
    from report_serve import serve_rows

    rows = serve_rows(found)
    assert rows[0][0].startswith("13 hone serve over HTTP, 1 connection")
    assert not any("(raw)" in row[0] for row in rows)
    assert rows[-1][5] == "PASS"
