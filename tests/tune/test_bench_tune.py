"""The tuning benchmarks run (at smoke sizes) and measure what they say: every side ran
the same number of trivial trials; both digits studies ran their whole budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_benchmarks import quick_results

pytestmark = pytest.mark.slow


def test_the_trial_cost_benchmark_times_every_side(tmp_path: Path) -> None:
    found = quick_results("bench_tune.py", tmp_path, "--only=tune_trial_cost")
    cost = found["tune_trial_cost"]
    assert set(cost["sides"]) == {"hone", "optuna_memory", "optuna_rdb_sqlite", "optuna_journal"}
    for side in cost["sides"].values():
        assert side["ms_per_trial"]["median"] > 0 and side["peak_rss_mib"]["median"] > 0
    ratio = cost["ratio_to_optuna_memory"]["median"]
    hone_ms = cost["sides"]["hone"]["ms_per_trial"]["median"]
    memory_ms = cost["sides"]["optuna_memory"]["ms_per_trial"]["median"]
    assert ratio == pytest.approx(hone_ms / memory_ms)


def test_the_digits_benchmark_runs_both_studies_to_their_budget(tmp_path: Path) -> None:
    found = quick_results("bench_tune.py", tmp_path, "--only=tune_digits")
    digits = found["tune_digits"]
    pruning, plain = digits["sides"]["tpe_asha"], digits["sides"]["random_none"]
    assert plain["pruned"]["values"] == [0]  # no pruner: every trial trains every epoch
    assert plain["epochs_trained"]["values"] == [digits["trials"] * digits["epochs"]]
    # With pruning, fewer epochs are trained, and the count says how many were cut.
    assert pruning["epochs_trained"]["median"] <= digits["trials"] * digits["epochs"]
    for side in (pruning, plain):
        assert 0 < side["best_val_acc"]["median"] <= 1
