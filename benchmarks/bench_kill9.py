"""Benchmark 4: ``kill -9`` a process in the middle of logging, then ``hone sync``.

Counts every point the journal received (intact frames in the segment files) and every
point in the store after the sync; they must be equal.

    python benchmarks/bench_kill9.py WORKDIR [--quick]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import hone
from hone.tracking.records import MetricPoint, decode_frames
from workloads import emit, sizes_from_argv

CHILD = """
import sys, hone
n = int(sys.argv[1])
run = hone.start_run("kill9")
print(run.id, flush=True)
for i in range(n):
    run.log_metric("loss", 1.0 / (i + 1), step=i)
    if i == n // 2:
        print("halfway", flush=True)
print("done", flush=True)
"""


def journal_points(journal_dir: Path) -> int:
    count = 0
    for path in journal_dir.glob("*.jnl"):
        count += sum(isinstance(r, MetricPoint) for _, r in decode_frames(path.read_bytes()))
    return count


def main() -> None:
    workdir = Path(sys.argv[1])
    sizes = sizes_from_argv()
    ws = hone.init(workdir / "kill9")
    env = {**os.environ, "HONE_HOME": str(ws.home)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(sizes.kill_points)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert child.stdout.readline().strip() == "halfway"
    time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    journaled = journal_points(ws.journal_dir)
    report = hone.sync(workspace=ws)
    stored = len(hone.get_metric_history(run_id, "loss", workspace=ws))
    status = hone.get_run(run_id, workspace=ws).status.value
    emit(
        {
            "bench": "kill9",
            "target_points": sizes.kill_points,
            "journaled": journaled,
            "stored_after_sync": stored,
            "lost": journaled - stored,
            "run_status": status,
            "replayed_records": report.records,
            "torn_bytes": report.torn_bytes,
        }
    )


if __name__ == "__main__":
    main()
