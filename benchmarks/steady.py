"""Steady-state per-step logging overhead on one long run (standard library only).

One run stays open for the whole trial; the training loop runs in blocks of the same
number of steps. For each logging variant, a round times three blocks in a row:

    logging block  L   the loop, calling the variant every step
    tail block     T   the loop without logging, then a drain of whatever the variant
                       left pending (hone's flusher, MLflow's async queue): any work the
                       logging pushed into the background lands here, not in B
    baseline block B   the loop without logging, clean

The variant's extra cost per block is (L - B) + (T - B): everything the logging caused,
foreground or background, is counted once. As a share of the loop's own time that is
``(L + T - 2B) / B``. Variants take turns in an order that rotates each round, and a
*control* variant (a callback that does nothing) measures the method's noise floor.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

LogFn = Callable[[dict[str, float], int], None]
RunBlock = Callable[[int, LogFn | None], None]


def control(values: dict[str, float], step: int) -> None:
    """A callback that does nothing: its "overhead" is the measurement's noise floor."""


def steady_overheads(
    run_block: RunBlock,
    variants: dict[str, LogFn],
    drain: Callable[[], Any],
    block_steps: int,
    rounds: int,
) -> dict[str, Any]:
    """Per variant: median and range over rounds of the overhead in percent of the loop's
    time, the extra microseconds per step, and the baseline's milliseconds per step."""
    names = list(variants)
    overhead: dict[str, list[float]] = {name: [] for name in names}
    extra_us: dict[str, list[float]] = {name: [] for name in names}
    baseline_ms: list[float] = []
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            run_block(block_steps, variants[name])
            t1 = time.perf_counter()
            run_block(block_steps, None)
            drain()
            t2 = time.perf_counter()
            run_block(block_steps, None)
            t3 = time.perf_counter()
            logging, tail, base = t1 - t0, t2 - t1, t3 - t2
            extra = logging + tail - 2 * base
            overhead[name].append(100 * extra / base)
            extra_us[name].append(1e6 * extra / block_steps)
            baseline_ms.append(1e3 * base / block_steps)
    return {
        "block_steps": block_steps,
        "rounds": rounds,
        "baseline_ms_per_step": statistics.median(baseline_ms),
        "variants": {
            name: {
                "overhead_pct": statistics.median(overhead[name]),
                "overhead_pct_min": min(overhead[name]),
                "overhead_pct_max": max(overhead[name]),
                "extra_us_per_step": statistics.median(extra_us[name]),
            }
            for name in names
        },
    }
