"""The serving benchmark runs (at smoke sizes) and measures what it says: every side served
the same model with one thread and gave the bare session's labels, the figures are each
trial's own and agree with one another, and the ratios and verdicts follow from them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.test_benchmarks import BENCH, QUICK, quick_results

pytestmark = pytest.mark.slow

MLFLOW_PYTHON = BENCH.parent / ".venv-mlflow" / "bin" / "python"


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


def rendered(result: dict[str, Any]) -> Sequence[tuple[str, ...]]:
    from report_models import models_rows

    rows = models_rows({"models_predict": result})
    assert rows[0][0].startswith("12 serving the digits CNN (1 thread), batch 1")
    assert not any("(raw)" in row[0] for row in rows)
    verdicts = [row[5] for row in rows if row[4]]
    expected = ["PASS" if result["passed"][name] else "MISS" for name in result["aims"]]
    assert verdicts == expected
    return rows


def test_the_serving_benchmark_times_hone_bare_onnxruntime_and_eager(tmp_path: Path) -> None:
    found = quick_results("bench_models.py", tmp_path, "--only=models_predict")
    result = found["models_predict"]
    check_sides(result, {"hone", "bare", "eager"})
    rows = rendered(result)
    assert any(row[0].startswith("  against eager PyTorch") for row in rows)


@pytest.mark.skipif(not MLFLOW_PYTHON.exists(), reason="no .venv-mlflow (make bench makes it)")
def test_the_serving_benchmark_times_mlflow_pyfunc_on_the_same_file(tmp_path: Path) -> None:
    found = quick_results(
        "bench_models.py", tmp_path, "--only=models_predict", f"--mlflow-python={MLFLOW_PYTHON}"
    )
    result = found["models_predict"]
    check_sides(result, {"hone", "bare", "eager", "mlflow"})
    assert result["mlflow_model"] == "models:/digits/1"
    mlflow = result["sides"]["mlflow"]
    # The input type it was timed with is the fastest of those it took in the probe.
    for size in ("b1", "b64"):
        (probe,) = [p[size] for p in mlflow["input_probe_us"]]
        taken = {name: us for name, us in probe.items() if us is not None}
        assert mlflow[f"input_{size}"] == [min(taken, key=lambda name: taken[name])]
    assert any(row[0].startswith("  against MLflow pyfunc") for row in rendered(result))
