"""The serving benchmark runs (at smoke sizes) and measures what it says: every side served
the same model with one thread and gave the bare session's labels, the figures are each
trial's own and agree with one another, and the ratios and verdicts follow from them.
(MLflow's side needs .venv-mlflow, made by ``make bench``: like the other MLflow sides,
it runs in the full benchmark, not here.)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.test_benchmarks import QUICK, quick_results

pytestmark = pytest.mark.slow


def check_sides(result: dict[str, Any], sides: set[str]) -> None:
    assert set(result["sides"]) == sides
    assert result["model"] == "digits@1" and result["epochs"] == QUICK.model_epochs
    assert result["calls"] == QUICK.predict_calls and result["batches"] == QUICK.predict_batches
    assert result["test_rows"] > 0 and result["onnx_bytes"] > 0
    for name, side in result["sides"].items():
        assert side["threads"] == [1], name  # one intra-op thread on every side
        # Every side predicts the same model: the bare session's labels on every test row
        # (eager PyTorch computes in another order, so a near tie could go the other way).
        assert side["labels_agree"]["min"] >= (0.99 if name == "eager" else 1.0), name
        b1, b64 = side["b1_median_us"]["median"], side["b64_median_us"]["median"]
        assert 0 < b1 <= side["b1_p99_us"]["median"], name
        assert b1 < b64 <= side["b64_p99_us"]["median"], name  # 64 rows take longer than 1
        # Throughput is the timed batches' rows over their summed time.
        mean = side["b64_mean_us"]["median"]
        assert side["b64_samples_per_s"]["median"] == pytest.approx(64e6 / mean), name
        assert side["load_ms"]["median"] > 0 and side["import_s"]["median"] > 0, name
        cold = side["import_s"]["median"] + side["load_ms"]["median"] / 1000
        assert side["cold_s"]["median"] == pytest.approx(cold), name
        assert side["peak_rss_mib"]["median"] > 20, name
    # Real work was timed: the eager network is several times slower than the ONNX graph.
    bare, eager = result["sides"]["bare"], result["sides"]["eager"]
    assert bare["b1_median_us"]["median"] < eager["b1_median_us"]["median"]
    hone = result["sides"]["hone"]
    for other in sides - {"hone"}:
        for name, key in (("b1", "b1_median_us"), ("b64", "b64_median_us")):
            ratio = result["ratios"][f"{name}_vs_{other}"]["median"]
            assert ratio == pytest.approx(
                hone[key]["median"] / result["sides"][other][key]["median"]
            )
    for name, aim in result["aims"].items():
        assert result["passed"][name] == (result["ratios"][name]["median"] <= aim)
    # The paired measurement: predict and its own session's run in one process.
    for batch in ("b1", "b64"):
        mine, bare = hone[f"paired_{batch}_hone_us"], hone[f"paired_{batch}_bare_us"]
        assert bare["median"] > 0 and mine["median"] > 0
        assert hone[f"paired_{batch}_overhead_us"]["values"] == pytest.approx(
            [m - b for m, b in zip(mine["values"], bare["values"], strict=True)]
        )
        assert 0.5 < hone[f"paired_{batch}_ratio"]["median"] < 3


def rendered(result: dict[str, Any]) -> Sequence[tuple[str, ...]]:
    from report_models import models_rows

    rows = models_rows({"models_predict": result})
    assert rows[0][0].startswith("12 serving the digits CNN (1 thread), batch 1")
    assert not any("(raw)" in row[0] for row in rows)
    verdicts = [row[5] for row in rows if row[4] and not row[0].startswith("  paired")]
    expected = ["PASS" if result["passed"][name] else "MISS" for name in result["aims"]]
    assert verdicts == expected
    hone = result["sides"]["hone"]
    paired = [row[5] for row in rows if row[0].startswith("  paired")]
    aims = result["aims"]
    assert paired == [
        "PASS" if hone[f"paired_{b}_ratio"]["median"] <= aims[f"{b}_vs_bare"] else "MISS"
        for b in ("b1", "b64")
    ]
    return rows


def test_the_serving_benchmark_times_hone_bare_onnxruntime_and_eager(tmp_path: Path) -> None:
    found = quick_results("bench_models.py", tmp_path, "--only=models_predict")
    result = found["models_predict"]
    check_sides(result, {"hone", "bare", "eager"})
    rows = rendered(result)
    assert any(row[0].startswith("  against eager PyTorch") for row in rows)
