"""Helpers for tests that drive hone from other processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from hone.tracking.entities import RunStatus
from hone.tracking.records import MetricPoint, decode_frames
from hone.tracking.run import ActiveRun


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


def crash(run: ActiveRun) -> Path:
    """Make ``run`` look like its process died: its segment is released as it stands (no
    end record, nothing more flushed) and the run is forgotten. Returns the segment."""
    from hone.tracking.active import forget

    run._tracker.flusher.unregister(run)
    path = run._writer.path
    run._writer.close()
    forget(run)
    run._status = RunStatus.KILLED  # this object must not write again
    return path


def journal_only(run: ActiveRun, kind: str, data: dict[str, object]) -> None:
    """Write an event straight into ``run``'s journal, past every check at log time (what
    an older hone, or a damaged journal, may hold)."""
    from hone.tracking.records import encode_event

    with run._wlock:
        run._writer.write(encode_event(kind, {"time": time.time(), **data}))
