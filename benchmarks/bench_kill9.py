"""Benchmark 4: ``kill -9`` a process while it logs; the store must hold what it acknowledged.

The child logs two keys a step, values a fixed function of the step, and after both calls
have returned writes the number of acknowledged steps into a shared memory map (a page the
kernel keeps when the child dies, costing no system call per step). The parent kills it
with SIGKILL at a different moment in each trial, runs ``hone sync``, and checks that for
both keys the store holds exactly the steps 0..k-1, each with its value, and k >= the
acknowledged count. Any trial that fails makes the benchmark exit non-zero.

    python benchmarks/bench_kill9.py WORKDIR [--quick] [--fault=drop-journal|drop-tail]

``--fault`` damages the journal before the sync (all of it, or its last records): a system
that lost points it had acknowledged. The check must then fail; the tests show it does.
"""

from __future__ import annotations

import mmap
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hone
from hone.errors import NotFoundError
from workloads import emit, kill9_value, option, sizes_from_argv

CHILD = """
import mmap, sys, time
import hone
from hone.errors import NotFoundError
from workloads import kill9_value
ack_path, n = sys.argv[1], int(sys.argv[2])
with open(ack_path, "r+b") as f:
    acked = memoryview(mmap.mmap(f.fileno(), 8)).cast("q")
run = hone.start_run("kill9")
print(run.id, flush=True)
log = run.log_metric
for step in range(10 * n):  # past n: the kill always lands while it is logging
    value = kill9_value(step)
    log("a", value, step=step)
    log("b", -value, step=step)
    acked[0] = step + 1
time.sleep(600)  # never end the run: the kill must find it live
"""

KEYS = {"a": 1.0, "b": -1.0}  # key -> sign of the logged value
HERE = Path(__file__).resolve().parent


def python_path() -> str:
    """This folder (the child imports workloads) ahead of whatever PYTHONPATH says."""
    return os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)


def kill_moments(trials: int) -> list[float]:
    """When to kill: once this fraction of ``steps`` is acknowledged (the child logs on past
    ``steps``, so a late kill still finds it logging, with points not yet in the store)."""
    if trials == 1:
        return [0.5]
    return [0.01 + 0.94 * i / (trials - 1) for i in range(trials)]


FAULTS = ("drop-journal", "drop-tail")


def inject(fault: str | None, journal_dir: Path) -> None:
    """Damage the journal before the sync, as a system that lost acknowledged points would:
    ``drop-journal`` deletes every segment, ``drop-tail`` zeroes the last 2 KiB of records
    of each (the last few dozen points: a reader stops at a zeroed frame)."""
    for segment in journal_dir.glob("*.jnl"):
        if fault == "drop-journal":
            segment.unlink()
        elif fault == "drop-tail":
            data = segment.read_bytes()
            end = len(data.rstrip(b"\0"))
            with segment.open("r+b") as fh:
                fh.seek(max(0, end - 2048))
                fh.write(bytes(end - max(0, end - 2048)))


def one_trial(
    workdir: Path, steps: int, fraction: float, seed: int, fault: str | None
) -> dict[str, Any]:
    ws = hone.init(workdir)
    ack_path = workdir / "acked"
    ack_path.write_bytes(bytes(8))
    with ack_path.open("r+b") as fh:
        acked = memoryview(mmap.mmap(fh.fileno(), 8)).cast("q")
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ack_path), str(steps)],
            env={**os.environ, "HONE_HOME": str(ws.home), "PYTHONPATH": python_path()},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        target = int(fraction * steps)
        while acked[0] < target and child.poll() is None:
            time.sleep(0.0005)
        time.sleep(random.Random(seed).uniform(0, 0.005))  # not always right after a poll
        if child.poll() is not None:
            raise SystemExit(f"the logging child died on its own (exit {child.returncode})")
        os.kill(child.pid, signal.SIGKILL)
        child.communicate()
        acknowledged = int(acked[0])
        acked.release()
    inject(fault, ws.journal_dir)
    sync = subprocess.run(
        [str(Path(sys.executable).parent / "hone"), "--workspace", str(ws.home), "sync"],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = (
        [] if sync.returncode == 0 else [f"hone sync exited {sync.returncode}: {sync.stderr}"]
    )
    stored: dict[str, int] = {}
    try:
        status = hone.get_run(run_id, workspace=ws).status.value
    except NotFoundError:
        status = "missing"
    if status != "killed":
        problems.append(f"run status is {status!r}, not 'killed'")
    for key, sign in KEYS.items():
        history = [] if status == "missing" else hone.get_metric_history(run_id, key, workspace=ws)
        stored[key] = len(history)
        for expected_step, point in enumerate(history):
            if point.step != expected_step:
                problems.append(f"{key}: step {point.step} where {expected_step} was due (a gap)")
                break
            if point.value != sign * kill9_value(expected_step):
                problems.append(
                    f"{key}: step {point.step} holds {point.value!r}, not the logged value"
                )
                break
        if len(history) < acknowledged:
            problems.append(
                f"{key}: the store holds {len(history):,} steps "
                f"but {acknowledged:,} were acknowledged"
            )
    return {
        "kill_at_fraction": round(fraction, 3),
        "acknowledged": acknowledged,
        "stored": min(stored.values()),
        "beyond_acknowledged": min(stored.values()) - acknowledged,
        "run_status": status,
        "ok": not problems,
        "problems": problems,
    }


def main() -> None:
    workdir = Path(sys.argv[1])
    sizes = sizes_from_argv()
    fault = option("fault")
    if fault is not None and fault not in FAULTS:
        raise SystemExit(f"--fault={fault}: unknown (one of {', '.join(FAULTS)})")
    trials = [
        one_trial(workdir / f"trial-{i}", sizes.kill_points, fraction, i, fault)
        for i, fraction in enumerate(kill_moments(sizes.kill_trials))
    ]
    failed = [t for t in trials if not t["ok"]]
    emit(
        {
            "bench": "kill9",
            "steps_per_run": sizes.kill_points,
            "points_per_step": len(KEYS),
            "trials": trials,
            "passed": len(trials) - len(failed),
            "failed": len(failed),
            "fault": fault,
        }
    )
    for i, trial in enumerate(trials):
        print(
            f"trial {i}: killed at {trial['kill_at_fraction']:.0%}, acknowledged "
            f"{trial['acknowledged']:,} steps, store holds {trial['stored']:,}: "
            + ("ok" if trial["ok"] else "FAILED: " + "; ".join(trial["problems"])),
            file=sys.stderr,
        )
    if failed:
        raise SystemExit(f"kill -9 check FAILED in {len(failed)} of {len(trials)} trials")


if __name__ == "__main__":
    main()
