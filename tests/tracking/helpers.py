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
