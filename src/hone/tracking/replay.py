"""``hone sync``: replay journals that no living process holds, and mark dead runs killed.

One damaged or refused record never stops a replay: damaged bytes are stepped over (and
reported), records the store refuses are set aside (and reported), and a segment whose
first record cannot be read — so hone cannot tell which run it belongs to — is moved to
``journals/damaged/`` for a person to look at. Only a store that does not answer stops the
replay, leaving the remaining segments in place for the next one.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from hone.errors import DiskFullError, StoreUnavailableError, WorkspaceError
from hone.tracking.applier import KEEP_QUARANTINED, AppliedRange, apply_range
from hone.tracking.journal import SegmentFile, abandoned_segments, remove_segment, set_aside
from hone.tracking.quarantine import Quarantined
from hone.tracking.sink import StoreSink

__all__ = ["SetAside", "SyncReport", "sync_journals"]

log = logging.getLogger("hone.tracking")

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
#: Failures after which the replay stops: the store cannot take anything now.
_STOPPING = (StoreUnavailableError, DiskFullError, WorkspaceError)


@dataclass(frozen=True)
class SetAside:
    """A segment moved to ``journals/damaged/`` instead of replayed."""

    path: str
    reason: str


@dataclass
class SyncReport:
    segments: int = 0
    records: int = 0
    torn_bytes: int = 0
    #: Damaged bytes stepped over in the middle of segments.
    skipped_bytes: int = 0
    killed_runs: list[str] = field(default_factory=list)
    #: Records the store refused or could not read, set aside (the first 1,000).
    quarantined: list[Quarantined] = field(default_factory=list)
    quarantined_count: int = 0
    set_aside: list[SetAside] = field(default_factory=list)


def sync_journals(journal_dir: Path, sink: StoreSink, run_id: str | None = None) -> SyncReport:
    """Replay every abandoned segment (only ``run_id``'s, if given) into the store.

    A segment that started its run but never ended it belonged to a process that died: the
    run is marked ``killed`` at the time of its last record. Replayed segments are deleted.
    Raises ``StoreUnavailableError`` (or ``DiskFullError``, ``WorkspaceError``) with the
    remaining segments left in place when the store cannot take them.
    """
    report = SyncReport()
    for segment in abandoned_segments(journal_dir):
        if segment.run_id is None:
            if segment.empty:  # emptied for reuse, or died before its first record
                remove_segment(segment.path)
            elif run_id is None:
                _set_aside(report, segment.path, "its first record is unreadable")
            continue
        if run_id is not None and segment.run_id != run_id:
            continue
        if not _RUN_ID.match(segment.run_id):
            _set_aside(report, segment.path, f"it names no valid run ({segment.run_id[:40]!r})")
            continue
        try:
            _replay(segment, sink, report)
        except _STOPPING:
            raise
        except (OSError, ValueError) as exc:
            _set_aside(report, segment.path, f"it could not be read: {exc}")
    return report


def _replay(segment: SegmentFile, sink: StoreSink, report: SyncReport) -> None:
    assert segment.run_id is not None
    size = os.fstat(segment.fd).st_size
    result = apply_range(segment.fd, 0, size, segment.run_id, sink, segment=segment.path.name)
    report.segments += 1
    report.records += result.records
    report.torn_bytes += result.torn_bytes
    report.quarantined_count += result.quarantined_count
    room = KEEP_QUARANTINED - len(report.quarantined)
    report.quarantined += result.quarantined[: max(room, 0)]
    if result.torn_bytes:
        log.warning(
            "hone: %s ends in %d bytes of a torn record (a crash mid-write); kept the %d "
            "intact records before it",
            segment.path,
            result.torn_bytes,
            result.records,
        )
    for skipped in result.skipped:
        report.skipped_bytes += skipped.length
        log.warning(
            "hone: %s: skipped %d damaged bytes at offset %d and carried on with the next "
            "intact record",
            segment.path,
            skipped.length,
            skipped.offset,
        )
    died = not result.saw_end and segment.owns_run
    if died and sink.mark_killed(segment.run_id, _death_time(result, segment.fd)):
        report.killed_runs.append(segment.run_id)
    sink.forget(segment.run_id)
    remove_segment(segment.path)


def _death_time(result: AppliedRange, fd: int) -> float:
    """When the process that wrote a segment died, as well as hone can tell: the time of
    its last record. A metric's own timestamp counts only if it is not later than the
    file's last change: users log timestamps of any era, events carry hone's clock."""
    changed = os.fstat(fd).st_mtime
    candidates = [] if result.last_event_time is None else [result.last_event_time]
    if result.last_timestamp is not None and result.last_timestamp <= changed:
        candidates.append(result.last_timestamp)
    return max(candidates, default=changed)


def _set_aside(report: SyncReport, path: Path, reason: str) -> None:
    try:
        target = set_aside(path)
    except OSError as exc:
        log.warning("hone: cannot move %s aside (%s): %s", path, exc, reason)
        return
    report.set_aside.append(SetAside(str(target), reason))
    log.warning("hone: moved %s to %s: %s", path.name, target, reason)
