"""The table ``make bench`` prints: every figure as median [min-max] over its trials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = tuple[str, str, str, str, str, str]

TARGETS = {
    "log_metric_ratio": 1000.0,
    "log_batch_ratio": 20.0,
    "overhead_pct": 2.0,
    "runs_ratio": 20.0,
    "search_ratio": 10.0,
    "memory_growth_mib": 64.0,
    "memory_ratio": 1000.0,
}


def spread_text(s: dict[str, Any] | None, fmt: str = ",.0f", unit: str = "") -> str:
    if not s:
        return "-"
    if s["min"] == s["max"]:
        return f"{s['median']:{fmt}}{unit}"
    return f"{s['median']:{fmt}}{unit} [{s['min']:{fmt}}-{s['max']:{fmt}}]"


def verdict(s: dict[str, Any] | None, ok: Callable[[float], bool]) -> str:
    if not s:
        return ""
    return "PASS" if ok(s["median"]) else "MISS"


def fig(summary: dict[str, Any], side: str, key: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = summary.get("sides", {}).get(side, {}).get(key)
    return found if isinstance(found, dict) else None


def ratio(summary: dict[str, Any], name: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = summary.get("ratios", {}).get(name)
    return found


def durability(s: dict[str, Any], side: str) -> str:
    """The SQLite settings a side's store ran with, as its trials reported them."""
    figures = s.get("sides", {}).get(side, {})
    mode, sync = figures.get("journal_mode"), figures.get("synchronous")
    if not isinstance(mode, list) or not isinstance(sync, list):
        return "-"
    return f"{'/'.join(mode)} + synchronous={'/'.join(sync)}"


def throughput_rows(s: dict[str, Any]) -> list[Row]:
    t = TARGETS
    return [
        (
            "1 log_metric loop, points/s into the store",
            spread_text(fig(s, "hone", "points_per_s")),
            spread_text(fig(s, "mlflow", "log_metric_per_s")),
            spread_text(ratio(s, "log_metric"), ",.0f", "x"),
            f">= {t['log_metric_ratio']:,.0f}x",
            verdict(ratio(s, "log_metric"), lambda v: v >= t["log_metric_ratio"]),
        ),
        (
            "  MLflow log_batch(1000) of the same points",
            "",
            spread_text(fig(s, "mlflow", "log_batch_per_s")),
            spread_text(ratio(s, "log_batch"), ",.1f", "x"),
            f">= {t['log_batch_ratio']:.0f}x",
            verdict(ratio(s, "log_batch"), lambda v: v >= t["log_batch_ratio"]),
        ),
        (
            "  ablation: MLflow on WAL + synchronous=NORMAL, log_metric",
            "",
            spread_text(fig(s, "mlflow_wal", "log_metric_per_s")),
            spread_text(ratio(s, "log_metric_wal"), ",.0f", "x"),
            "",
            "",
        ),
        (
            "  ablation: MLflow on WAL + synchronous=NORMAL, log_batch",
            "",
            spread_text(fig(s, "mlflow_wal", "log_batch_per_s")),
            spread_text(ratio(s, "log_batch_wal"), ",.1f", "x"),
            "",
            "",
        ),
        _rss_row(s, "mlflow"),
        (
            "  SQLite store: journal + synchronous",
            durability(s, "hone"),
            f"{durability(s, 'mlflow')} (ablation: {durability(s, 'mlflow_wal')})",
            "",
            "",
            "",
        ),
    ]


def overhead_rows(s: dict[str, Any]) -> list[Row]:
    def pct(side: str, variant: str) -> str:
        return spread_text(fig(s, side, f"variants.{variant}.overhead_pct"), "+.2f", "%")

    hone_dict = fig(s, "hone", "variants.log_metrics.overhead_pct")
    return [
        (
            "2 steady-state overhead, log_metrics(dict of 4) a step",
            pct("hone", "log_metrics"),
            pct("mlflow", "log_metrics"),
            "",
            f"<= {TARGETS['overhead_pct']:.0f}%",
            verdict(hone_dict, lambda v: v <= TARGETS["overhead_pct"]),
        ),
        (
            "  4 log_metric calls a step",
            pct("hone", "log_metric"),
            pct("mlflow", "log_metric"),
            "",
            "",
            "",
        ),
        (
            "  MLflow log_metrics(dict, synchronous=False)",
            "",
            pct("mlflow", "log_metrics_async"),
            "",
            "",
            "",
        ),
        (
            "  control: a no-op callback (noise floor)",
            pct("hone", "control"),
            pct("mlflow", "control"),
            "",
            "",
            "",
        ),
        (
            "  extra us a step, log_metrics(dict)",
            spread_text(fig(s, "hone", "variants.log_metrics.extra_us_per_step"), ",.0f"),
            spread_text(fig(s, "mlflow", "variants.log_metrics.extra_us_per_step"), ",.0f"),
            "",
            "",
            "",
        ),
        (
            "  the loop alone, ms a step",
            spread_text(fig(s, "hone", "baseline_ms_per_step"), ".1f"),
            spread_text(fig(s, "mlflow", "baseline_ms_per_step"), ".1f"),
            "",
            "",
            "",
        ),
        _rss_row(s, "mlflow"),
    ]


def lifecycle_rows(life: dict[str, Any]) -> list[Row]:
    return [
        (
            "2 run start, ms",
            spread_text(fig(life, "hone", "start_ms"), ".2f"),
            spread_text(fig(life, "mlflow", "start_ms"), ".1f"),
            spread_text(ratio(life, "start"), ",.0f", "x"),
            "",
            "",
        ),
        (
            f"  run end after {_count(life, 'points_per_run')} points, ms (MLflow async)",
            spread_text(fig(life, "hone", "end_ms"), ".2f"),
            spread_text(fig(life, "mlflow", "end_ms"), ".1f")
            + (
                f" ({spread_text(fig(life, 'mlflow', 'end_async_ms'), '.0f')})"
                if fig(life, "mlflow", "end_async_ms")
                else ""
            ),
            spread_text(ratio(life, "end"), ",.0f", "x"),
            "",
            "",
        ),
    ]


def runs_rows(s: dict[str, Any], runs: int) -> list[Row]:
    return [
        (
            f"3 create {runs:,} runs (10 params, 10 metrics), runs/s",
            spread_text(fig(s, "hone", "runs_per_s")),
            spread_text(fig(s, "mlflow", "runs_per_s"), ",.1f"),
            spread_text(ratio(s, "runs"), ",.1f", "x"),
            f">= {TARGETS['runs_ratio']:.0f}x",
            verdict(ratio(s, "runs"), lambda v: v >= TARGETS["runs_ratio"]),
        ),
        (
            "  ablation: MLflow on WAL + synchronous=NORMAL",
            "",
            spread_text(fig(s, "mlflow_wal", "runs_per_s"), ",.1f"),
            spread_text(ratio(s, "runs_wal"), ",.1f", "x"),
            "",
            "",
        ),
        (
            "  MLflow's own gain from those settings",
            "",
            "",
            spread_text(ratio(s, "mlflow_wal_gain"), ".2f", "x"),
            "",
            "",
        ),
        _rss_row(s, "mlflow"),
    ]


def search_rows(search: dict[str, Any], searched: int) -> list[Row]:
    return [
        (
            f"3 search_runs over {searched:,} runs, warm, ms",
            spread_text(fig(search, "hone", "warm_ms"), ",.1f"),
            spread_text(fig(search, "mlflow", "warm_ms"), ",.1f"),
            spread_text(ratio(search, "warm"), ",.1f", "x"),
            f">= {TARGETS['search_ratio']:.0f}x",
            verdict(ratio(search, "warm"), lambda v: v >= TARGETS["search_ratio"]),
        ),
        (
            "  first search in its process, ms",
            spread_text(fig(search, "hone", "first_ms"), ",.1f"),
            spread_text(fig(search, "mlflow", "first_ms"), ",.1f"),
            spread_text(ratio(search, "first_in_process"), ",.1f", "x"),
            "",
            "",
        ),
        (
            "  fresh process: python -c 'import + search', s",
            spread_text(fig(search, "hone_fresh", "trial_wall_s"), ".2f"),
            spread_text(fig(search, "mlflow_fresh", "trial_wall_s"), ".2f"),
            spread_text(ratio(search, "fresh_process"), ",.1f", "x"),
            "",
            "",
        ),
        (
            "  fresh process peak RSS, MiB",
            spread_text(fig(search, "hone_fresh", "trial_peak_rss_mib")),
            spread_text(fig(search, "mlflow_fresh", "trial_peak_rss_mib")),
            "",
            "",
            "",
        ),
    ]


def kill9_rows(k: dict[str, Any]) -> list[Row]:
    trials = k["trials"]
    detail = ", ".join(f"{t['acknowledged']:,}/{t['stored']:,}" for t in trials)
    return [
        (
            f"4 kill -9 at {len(trials)} moments: store >= acknowledged, exact",
            f"{k['passed']}/{len(trials)} passed",
            "",
            "",
            "all pass",
            "PASS" if k["failed"] == 0 else "FAIL",
        ),
        ("  acknowledged / stored steps per trial", detail, "", "", "", ""),
    ]


def memory_rows(s: dict[str, Any], points: tuple[int, ...]) -> list[Row]:
    mlflow_points = fig(s, "mlflow", "points")
    rows: list[Row] = []
    for n in points:
        side = f"hone_{n}"
        growth = fig(s, side, "rss_growth_mib")
        rows += [
            (
                f"8 {n:,} log_metric calls: peak RSS growth, MiB",
                spread_text(growth, ",.1f"),
                spread_text(fig(s, "mlflow", "rss_growth_mib"), ",.1f")
                + (f" ({mlflow_points['median']:,.0f} pts, log_batch)" if mlflow_points else ""),
                "",
                f"<= {TARGETS['memory_growth_mib']:.0f} MiB",
                verdict(growth, lambda v: v <= TARGETS["memory_growth_mib"]),
            ),
            (
                "  RSS anon / file-backed after the loop (at baseline), MiB",
                f"{_mib(s, side, 'anon_mib_after_loop')} ({_mib(s, side, 'baseline_anon_mib')})"
                f" / {_mib(s, side, 'file_mib_after_loop')} ({_mib(s, side, 'baseline_file_mib')})",
                "",
                "",
                "",
                "",
            ),
            (
                "  points/s into the store (MLflow: log_metric)",
                spread_text(fig(s, side, "points_per_s")),
                spread_text(fig(s, "mlflow", "log_metric_per_s")),
                spread_text(ratio(s, f"{side}_vs_log_metric"), ",.0f", "x"),
                f">= {TARGETS['memory_ratio']:,.0f}x",
                verdict(ratio(s, f"{side}_vs_log_metric"), lambda v: v >= TARGETS["memory_ratio"]),
            ),
        ]
    return rows


def _count(s: dict[str, Any], key: str) -> str:
    found = fig(s, "hone", key)
    return f"{found['median']:,.0f}" if found else "?"


def _mib(s: dict[str, Any], side: str, key: str) -> str:
    found = fig(s, side, key)
    return f"{found['median']:,.0f}" if found else "-"


def _rss_row(s: dict[str, Any], other: str) -> Row:
    return (
        "  peak RSS of a trial process, MiB",
        spread_text(fig(s, "hone", "trial_peak_rss_mib")),
        spread_text(fig(s, other, "trial_peak_rss_mib")),
        "",
        "",
        "",
    )
