"""Helpers for tests that drive hone from other processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hone.tracking.records import MetricPoint, decode_frames


def spawn(code: str, home: Path, **env: str) -> subprocess.Popen[str]:
    """Run ``code`` in a fresh interpreter with HONE_HOME set to ``home``."""
    full_env = {**os.environ, "HONE_HOME": str(home), **env}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=full_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def journal_points(journal_dir: Path) -> set[tuple[str, str, int]]:
    """Every (run, key, step) that the intact part of every journal segment holds."""
    points: set[tuple[str, str, int]] = set()
    for path in journal_dir.glob("*.jnl"):
        for _, record in decode_frames(path.read_bytes()):
            if isinstance(record, MetricPoint):
                points.add((path.name.split(".", 1)[0], record.key, record.step))
    return points


def kill_mid_run(code: str, home: Path, settle: float = 0.0) -> str:
    """Run ``code`` (which prints its run id, then a line once it is logging) and kill it
    with SIGKILL once it is under way; returns the run id."""
    import os
    import signal
    import time

    proc = spawn(code, home)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    under_way = proc.stdout.readline().strip()
    assert under_way, proc.stderr.read() if proc.stderr else "the child printed nothing"
    time.sleep(settle)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return run_id
