"""The training benchmarks run (at smoke sizes) and measure what they say: the plain
PyTorch baseline trains exactly the model hone trains, and a restart is timed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_benchmarks import quick_results, run_script

pytestmark = pytest.mark.slow


def test_the_plain_loop_is_the_same_training_as_the_standard_loop(tmp_path: Path) -> None:
    """Same model, data order, seed, optimizer, schedule and clipping: the final accuracy
    is the same to the last sample (else the speed comparison compares other work)."""
    found = quick_results("bench_train.py", tmp_path, "--only=train_loop")
    loop = found["train_loop"]
    hone_acc = loop["sides"]["hone"]["accuracy"]["median"]
    plain_acc = loop["sides"]["plain"]["accuracy"]["median"]
    assert hone_acc == pytest.approx(plain_acc, abs=1e-6)  # 1 sample of 359 is 2.8e-3
    assert loop["sides"]["hone"]["samples_per_s"]["median"] > 0
    assert loop["device"] == "cpu" and loop["amp_dtype"] == "none"
    for side in ("hone", "plain"):  # the steady state leaves start-up out: it is faster
        figures = loop["sides"][side]
        assert figures["loop_samples_per_s"]["median"] > figures["samples_per_s"]["median"]
    assert loop["loop_ratio"]["median"] > 0
    assert "mlflow" not in loop["sides"]  # no MLflow environment in the tests


def test_the_restart_benchmark_times_a_real_restart(tmp_path: Path) -> None:
    found = quick_results("bench_train.py", tmp_path, "--only=train_restart")
    restart = found["train_restart"]
    assert restart["steps_redone"]["values"] == [5]  # killed at 30, checkpoint at 24
    assert 0 < restart["restart_s"]["median"] < 120


def test_the_plain_ddp_baseline_is_the_same_training_as_hone_at_each_scale(
    tmp_path: Path,
) -> None:
    """hone's scaling is read against plain DDP on the same cores: at one process and at
    two, both train the same model on the same shards, to the same accuracy."""
    found = quick_results("bench_train.py", tmp_path, "--only=train_scaling")
    for name, config in found["train_scaling"]["configs"].items():
        sides = config["sides"]
        for n in (1, 2):
            hone_acc = sides[f"{n}x1"]["accuracy"]["median"]
            plain_acc = sides[f"plain {n}x1"]["accuracy"]["median"]
            assert hone_acc == pytest.approx(plain_acc, abs=1e-6), (name, n)
            assert sides[f"{n}x1"]["peak_rss_mib"]["median"] > 100  # every process counted
        assert config["plain_ratio"]["median"] > 0


def test_the_loop_ablation_runs_each_variant_and_puts_the_loop_back(tmp_path: Path) -> None:
    done = run_script("loop_ablation.py", tmp_path, "1", "plain,full,no-checkpoint,no-fsync", "1")
    assert done.returncode == 0, done.stderr
    medians = {
        line.split()[0]: float(line.split()[1])
        for line in done.stdout.splitlines()
        if line.startswith("  ")
    }
    assert set(medians) == {"plain", "full", "no-checkpoint", "no-fsync"}
    assert all(seconds > 0 for seconds in medians.values())
    unknown = run_script("loop_ablation.py", tmp_path, "1", "plain,fast", "1")
    assert unknown.returncode != 0 and "no such variant fast" in unknown.stderr
