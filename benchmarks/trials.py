"""Trials in fresh processes, interleaved between sides, and the statistics of their pairs.

A *trial* is one benchmark on one side in a new interpreter. The parent times it from
spawn to exit and reads its peak RSS from the kernel (``wait4``'s ``ru_maxrss``), so wall
time and memory are measured the same way for hone and MLflow whatever the child does.

Linux starts a child's ``ru_maxrss`` at its parent's peak RSS (it is carried over when the
child execs), so the figure is the child's own only where it exceeds the parent's peak.
``run_all.py`` is a small process (the standard library and these modules), far below any
trial; ``Trial.own_peak_rss_mib`` is None where the figure does not clear the parent's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rss import peak_mib


@dataclass
class Trial:
    side: str
    results: dict[str, dict[str, Any]]
    wall_s: float
    peak_rss_mib: float  # wait4's ru_maxrss: at least the parent's peak (parent_peak_mib)
    stdout: str = field(repr=False, default="")
    parent_peak_mib: float = 0.0

    @property
    def own_peak_rss_mib(self) -> float | None:
        """The child's own peak, or None where it did not clear the parent's (unknown)."""
        clears = self.peak_rss_mib > 1.02 * self.parent_peak_mib + 4  # a margin for noise
        return self.peak_rss_mib if clears else None


class TrialFailed(RuntimeError):
    pass


#: What a gloo process group's teardown prints when it aborts a process that had finished
#: its work (a PyTorch race, seen on plain DDP's side even after a barrier).
TEARDOWN_ABORT = "terminate called without an active exception"


def spawn(
    cmd: Sequence[str],
    side: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    *,
    teardown_abort_ok: bool = False,
) -> Trial:
    """Run ``cmd`` to completion; its RESULT lines, wall time and peak RSS.
    ``teardown_abort_ok``: a job that printed its RESULT and then died of gloo's teardown
    abort counts (hone's launcher treats its own jobs the same way: training was done)."""
    floor = peak_mib()  # the child's ru_maxrss starts here
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=err, env=env, text=True
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        # wait4 rather than Popen.wait: it returns the child's own resource usage.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if proc.returncode != 0:
            err.seek(0)
            said = err.read().decode(errors="replace")
            if teardown_abort_ok and "RESULT " in out and TEARDOWN_ABORT in said:
                print(f"  ({side}: exit {proc.returncode} in gloo's teardown, after its result)")
            else:
                raise TrialFailed(
                    f"{' '.join(cmd)} exited with {proc.returncode}\n{out[-2000:]}{said[-4000:]}"
                )
    results: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            results[result.pop("bench")] = result
    return Trial(side, results, wall, usage.ru_maxrss / 1024, out, floor)  # KiB on Linux


def interleaved(
    sides: dict[str, Callable[[int], Trial]], rounds: int, label: str
) -> list[dict[str, Trial]]:
    """``rounds`` rounds, each running every side once; the order rotates each round (for
    two sides A B, B A, A B, …) so neither side always runs first on a warmer machine."""
    names = list(sides)
    done: list[dict[str, Trial]] = []
    for r in range(rounds):
        shift = r % len(names)
        row: dict[str, Trial] = {}
        for name in names[shift:] + names[:shift]:
            trial = sides[name](r)
            row[name] = trial
            own = trial.own_peak_rss_mib
            peak = "?" if own is None else f"{own:.0f}"
            print(
                f"  {label} round {r + 1}/{rounds} {name}: {trial.wall_s:.1f} s, peak {peak} MiB",
                flush=True,
            )
        done.append(row)
    return done


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, range and every value: what a figure is quoted with."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": list(values),
    }


def pair_ratios(
    rounds: list[dict[str, Trial]], fn: Callable[[dict[str, Trial]], float]
) -> dict[str, Any]:
    """``fn`` applied to each round's trials (a ratio of the two sides), then its spread."""
    return spread([fn(row) for row in rounds])


def side_spread(
    rounds: list[dict[str, Trial]], side: str, fn: Callable[[Trial], float]
) -> dict[str, Any]:
    return spread([fn(row[side]) for row in rounds])


def python_command(python: Path | str, script: str, workdir: Path, *args: str) -> list[str]:
    here = Path(__file__).resolve().parent
    return [str(python), str(here / script), str(workdir), *args]


def this_python() -> str:
    return sys.executable
