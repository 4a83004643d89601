"""Resident memory of this process, read from /proc/self/status (Linux).

Standard library only (imported on both sides). Figures are MiB. RSS counts every page
the process has resident, file-backed ones too: hone's journal is a shared memory map of
a file, so the journal pages a run has touched count here (as ``RssFile``), just as the
anonymous memory of its in-memory queue counts as ``RssAnon``.
"""

from __future__ import annotations

import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")
_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def status_mib() -> dict[str, float]:
    """VmRSS (now), VmHWM (peak), RssAnon, RssFile, RssShmem, in MiB."""
    found: dict[str, float] = {}
    try:
        lines = _STATUS.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        name, _, rest = line.partition(":")
        if name in _FIELDS:
            found[name] = int(rest.split()[0]) / 1024  # the kernel writes kB
    if "VmHWM" not in found:  # no /proc: the peak is still known to getrusage
        found["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return found


def rss_mib() -> float:
    return status_mib().get("VmRSS", status_mib()["VmHWM"])


def peak_mib() -> float:
    return status_mib()["VmHWM"]


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/self/clear_refs``).

    Returns False where the kernel refuses; the peak then still includes whatever the
    process reached before (importing, for one), which can only overstate growth."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Growth:
    """Peak RSS growth over a baseline taken now (after imports and starting the run)."""

    def __init__(self) -> None:
        self.peak_was_reset = reset_peak()
        self.status = status_mib()
        self.baseline = self.status.get("VmRSS", self.status["VmHWM"])

    def result(self) -> dict[str, float | bool | None]:
        status = status_mib()
        return {
            "baseline_rss_mib": self.baseline,
            "baseline_anon_mib": self.status.get("RssAnon"),
            "baseline_file_mib": self.status.get("RssFile"),
            "peak_rss_mib": status["VmHWM"],
            "rss_growth_mib": status["VmHWM"] - self.baseline,
            "peak_was_reset": self.peak_was_reset,
        }
