"""A server's processes, read from /proc (Linux): its descendants, their CPU time and
their memory. Standard library only (used on every side of the serving and UI benchmarks)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["children", "cpu_s", "free_port", "status_kib"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """Every descendant of ``pid``, also those a thread other than the main one started
    (MLflow's job runner starts its Huey consumers from threads: each thread's children are
    listed under that thread's own task)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        for child in map(int, text.split()):
            found += [child, *children(child)]
    return found


def cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def status_kib(pid: int, key: str) -> float:
    """A ``/proc/PID/status`` figure in kB (VmRSS, VmHWM, ...); 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def command(pid: int) -> str:
    """The first words of a process's command line, for the results file."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in cmd[:4] if part)[:120]
