"""Table rows for the tuning benchmarks (bench_tune.py). A part whose fields are not the
ones expected is printed raw rather than stopping the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from report import Row, spread_text, verdict

_COST_NAMES = {
    "optuna_memory": "Optuna in memory",
    "optuna_rdb_sqlite": "Optuna RDB on SQLite",
    "optuna_journal": "Optuna journal file",
}


def tune_rows(tune: dict[str, Any]) -> list[Row]:
    parts: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
        "tune_trial_cost": _cost,
        "tune_digits": _digits,
    }
    rows: list[Row] = []
    for name, result in tune.items():
        try:
            rows += parts[name](result)
        except (KeyError, TypeError, ValueError):
            rows.append((f"{name} (raw)", json.dumps(result)[:200], "", "", "", ""))
    return rows


def _cost(t: dict[str, Any]) -> list[Row]:
    sides = t["sides"]
    hone = sides["hone"]["ms_per_trial"]
    rows: list[Row] = [
        (
            f"10 {t['trials']} trivial trials, TPE: ms per trial (hone: runs included)",
            spread_text(hone, ".2f", " ms"),
            "",
            "",
            "<= 15 ms",
            verdict(hone, lambda v: v <= 15),
        )
    ]
    for side, label in _COST_NAMES.items():
        rows.append(
            (
                f"  against {label}",
                "",
                spread_text(sides[side]["ms_per_trial"], ".2f", " ms"),
                spread_text(t[f"ratio_to_{side}"], ".2f", "x"),
                "",
                "",
            )
        )
    rows.append(
        (
            "  peak RSS",
            spread_text(sides["hone"]["peak_rss_mib"], ".0f", " MiB"),
            spread_text(sides["optuna_memory"]["peak_rss_mib"], ".0f", " MiB") + " (in memory)",
            "",
            "",
            "",
        )
    )
    return rows


def _digits(t: dict[str, Any]) -> list[Row]:
    a, b = t["sides"]["tpe_asha"], t["sides"]["random_none"]
    return [
        (
            f"11 digits CNN, {t['trials']} trials of {t['epochs']} epochs: TPE+ASHA vs "
            "random, no pruning: wall s",
            spread_text(a["wall_s"], ".1f", " s"),
            spread_text(b["wall_s"], ".1f", " s"),
            spread_text(t["wall_ratio"], ".2f", "x"),
            "<= 0.70x",
            verdict(t["wall_ratio"], lambda v: v <= 0.70),
        ),
        (
            "  best validation accuracy",
            spread_text(a["best_val_acc"], ".4f"),
            spread_text(b["best_val_acc"], ".4f"),
            spread_text(t["accuracy_gap_points"], "+.2f", " pts"),
            ">= 0 pts",
            verdict(t["accuracy_gap_points"], lambda v: v >= 0),
        ),
        (
            "  the chosen model on the test split (no trial saw it)",
            spread_text(a["chosen_test_acc"], ".4f"),
            spread_text(b["chosen_test_acc"], ".4f"),
            spread_text(t["test_gap_points"], "+.2f", " pts"),
            "",
            "",
        ),
        (
            "  peak RSS of the study's process",
            spread_text(a["peak_rss_mib"], ".0f", " MiB"),
            spread_text(b["peak_rss_mib"], ".0f", " MiB"),
            "",
            "",
            "",
        ),
        (
            "  trials pruned; epochs trained in all",
            f"{spread_text(a['pruned'], '.0f')}; {spread_text(a['epochs_trained'], '.0f')}",
            f"{spread_text(b['pruned'], '.0f')}; {spread_text(b['epochs_trained'], '.0f')}",
            "",
            "",
            "",
        ),
    ]
