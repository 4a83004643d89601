"""Table rows for the training engine's benchmarks (bench_train.py). A part whose fields
are not the ones expected is printed raw rather than stopping the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from report import Row, spread_text, verdict


def train_rows(train: dict[str, Any]) -> list[Row]:
    parts: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
        "train_loop": _loop,
        "train_scaling": _scaling,
        "train_restart": _restart,
    }
    rows: list[Row] = []
    for name, result in train.items():
        try:
            rows += parts[name](result)
        except (KeyError, TypeError, ValueError):
            rows.append((f"{name} (raw)", json.dumps(result)[:200], "", "", "", ""))
    return rows


def _loop(t: dict[str, Any]) -> list[Row]:
    sides = t["sides"]
    rows: list[Row] = [
        (
            f"9 digits CNN, {t['epochs']} epochs"
            + (f" on {t['device']} ({t['amp_dtype']})" if t.get("device", "cpu") != "cpu" else "")
            + ": standard loop vs plain PyTorch, samples/s",
            spread_text(sides["hone"]["samples_per_s"]),
            spread_text(sides["plain"]["samples_per_s"]) + " (plain)",
            spread_text(t["ratio"], ".3f", "x"),
            ">= 0.97x",
            verdict(t["ratio"], lambda v: v >= 0.97),
        ),
    ]
    if "loop_ratio" in t:  # first step to last: start-up, checks and the run's end left out
        rows.append(
            (
                "  steady state (first step to last), samples/s",
                spread_text(sides["hone"]["loop_samples_per_s"]),
                spread_text(sides["plain"]["loop_samples_per_s"]) + " (plain)",
                spread_text(t["loop_ratio"], ".3f", "x"),
                "",
                "",
            )
        )
    rows += [
        (
            "  final accuracy (test split)",
            spread_text(sides["hone"]["accuracy"], ".4f"),
            spread_text(sides["plain"]["accuracy"], ".4f") + " (plain)",
            spread_text(t["accuracy_gap_points"], ".2f", " pts"),
            "<= 0.5 pts",
            verdict(t["accuracy_gap_points"], lambda v: v <= 0.5),
        ),
        (
            "  peak RSS of a trial process, MiB",
            spread_text(sides["hone"]["peak_rss_mib"]),
            spread_text(sides["plain"]["peak_rss_mib"]) + " (plain)",
            "",
            "",
            "",
        ),
    ]
    if "mlflow" in sides:
        rows.append(
            (
                "  plain loop + MLflow log_metric every step, samples/s",
                "",
                spread_text(sides["mlflow"]["samples_per_s"]),
                spread_text(t["mlflow_ratio"], ".3f", "x of plain"),
                "",
                "",
            )
        )
    return rows


def _scaling(t: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, c in t["configs"].items():
        one, two = c["sides"]["1x1"], c["sides"]["2x1"]
        sizes = {"digits16": "16 x 16", "digits24": "24 x 24", "digits32": "32 x 32"}
        compute_bound = name in sizes  # the others: earlier results files
        shape = sizes.get(name, "8 x 8")
        rows += [
            (
                f"9 scaling, CNN on digits {shape}: 2 procs x 1 thread vs 1 x 1, samples/s",
                spread_text(two["samples_per_s"]),
                spread_text(one["samples_per_s"]) + " (1 proc)",
                spread_text(c["ratio"], ".2f", "x"),
                ">= 1.6x" if compute_bound else "",
                verdict(c["ratio"], lambda v: v >= 1.6) if compute_bound else "",
            ),
            (
                "  ms a step (one process) / accuracy gap",
                spread_text(one["ms_per_step"], ".1f"),
                "",
                spread_text(c["accuracy_gap_points"], ".2f", " pts"),
                "<= 1 pt" if compute_bound else "",
                verdict(c["accuracy_gap_points"], lambda v: v <= 1.0) if compute_bound else "",
            ),
        ]
        if "plain 2x1" in c["sides"]:
            plain_one, plain_two = c["sides"]["plain 1x1"], c["sides"]["plain 2x1"]
            rows += [
                (
                    "  plain DDP, same cores: 2 x 1 vs 1 x 1, samples/s",
                    "",
                    f"{spread_text(plain_two['samples_per_s'])} / "
                    f"{spread_text(plain_one['samples_per_s'])}",
                    spread_text(c["plain_ratio"], ".2f", "x"),
                    "",
                    "",
                ),
                (
                    "  hone 2 x 1 vs plain DDP 2 x 1, samples/s",
                    "",
                    "",
                    spread_text(c["hone_vs_plain_2x1"], ".2f", "x"),
                    "",
                    "",
                ),
                (
                    "  peak RSS of the job (every process), MiB: 1 x 1 / 2 x 1",
                    f"{spread_text(one['peak_rss_mib'])} / {spread_text(two['peak_rss_mib'])}",
                    f"{spread_text(plain_one['peak_rss_mib'])} / "
                    f"{spread_text(plain_two['peak_rss_mib'])} (plain)",
                    "",
                    "",
                    "",
                ),
                (
                    "  accuracy after the epochs: hone 1 x 1 / 2 x 1",
                    f"{spread_text(one['accuracy'], '.4f')} / "
                    f"{spread_text(two['accuracy'], '.4f')}",
                    f"{spread_text(plain_one['accuracy'], '.4f')} / "
                    f"{spread_text(plain_two['accuracy'], '.4f')} (plain)",
                    "",
                    "",
                    "",
                ),
            ]
    return rows


def _restart(t: dict[str, Any]) -> list[Row]:
    return [
        (
            "9 restart: a rank SIGKILLed, seconds until training resumed",
            spread_text(t["restart_s"], ".1f", " s"),
            "",
            "",
            "",
            "",
        ),
        (
            f"  steps done twice (checkpoint every {t['checkpoint_every']})",
            spread_text(t["steps_redone"], ".0f"),
            "",
            "",
            "",
            "",
        ),
    ]
