"""Printing for the CLI: Rich for people, ``--json`` for programs."""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = [
    "console",
    "count_progress",
    "err_console",
    "fmt_number",
    "fmt_time",
    "print_json",
    "sparkline",
]

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def fmt_time(ts: float | None, *, short: bool = False) -> str:
    """UTC, as ``2026-11-26 21:21:04`` (``11-26 21:21`` when short, for tables)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime(
        "%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S"
    )


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def fmt_number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 60) -> str:
    """A one-line picture of a metric's history (finite values only, resampled to width)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(finite) > width:
        step = len(finite) / width
        finite = [finite[int(i * step)] for i in range(width)]
    low, high = min(finite), max(finite)
    span = high - low or 1.0
    return "".join(_BARS[int((v - low) / span * (len(_BARS) - 1))] for v in finite)


def count_progress(label: str) -> Progress:
    """A bar counting done out of total, a status text and the time elapsed (a task's
    ``status`` field): training steps, a study's trials."""
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
