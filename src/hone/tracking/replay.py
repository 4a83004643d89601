"""``hone sync``: replay journals that no living process holds, and mark dead runs killed.

One damaged or refused record never stops a replay: damaged bytes are stepped over (and
reported), records the store refuses are set aside (and reported), and a segment whose
first record cannot be read — so hone cannot tell which run it belongs to — is moved to
``journals/damaged/`` for a person to look at. Only a store that does not answer stops the
replay, leaving the remaining segments in place for the next one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from hone.errors import DiskFullError, StoreUnavailableError, WorkspaceError
from hone.tracking.applier import KEEP_QUARANTINED, AppliedRange, apply_range
from hone.tracking.batch import Batch
from hone.tracking.deaths import extend_killed, mark_killed
from hone.tracking.journal import SegmentFile, abandoned_segments, remove_segment, set_aside
from hone.tracking.quarantine import Quarantined, forget_quarantined, quarantined_records
from hone.tracking.records import Event, MetricPoint
from hone.tracking.sink import StoreSink

__all__ = ["RetryReport", "SetAside", "SyncReport", "retry_set_aside", "sync_journals"]

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
    if died and mark_killed(sink.db, segment.run_id, _death_time(result, segment.fd)):
        report.killed_runs.append(segment.run_id)
    elif not segment.owns_run and result.records:  # an attached writer's last word
        extend_killed(sink.db, segment.run_id, _last_time(result))
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


def _last_time(result: AppliedRange) -> float:
    """When an attached writer (a training worker) last wrote: its newest record's time,
    a point's own time only if it is not in the future (the file's mtime cannot bound it:
    writes through a shared mapping do not always move it)."""
    candidates = [] if result.last_event_time is None else [result.last_event_time]
    if result.last_timestamp is not None and result.last_timestamp <= time.time():
        candidates.append(result.last_timestamp)
    return max(candidates, default=0.0)


def _set_aside(report: SyncReport, path: Path, reason: str) -> None:
    try:
        target = set_aside(path)
    except OSError as exc:
        log.warning("hone: cannot move %s aside (%s): %s", path, exc, reason)
        return
    report.set_aside.append(SetAside(str(target), reason))
    log.warning("hone: moved %s to %s: %s", path.name, target, reason)


@dataclass
class RetryReport:
    """What ``retry_set_aside`` did with the records it found set aside."""

    applied: int = 0
    #: Refused again (they stay set aside, with the store's reason now).
    refused: int = 0
    #: Records hone cannot rebuild (damaged bytes, a record cut for size): they stay.
    unreadable: int = 0


def retry_set_aside(sink: StoreSink, run_id: str | None = None) -> RetryReport:
    """Apply again what was set aside (of one run, or all): after the cause is fixed (a
    column widened, a value edited by hand, a newer hone), records go in and leave the
    quarantine; those the store still refuses stay, with its reason."""
    report = RetryReport()
    for item in quarantined_records(sink.db, run_id):
        batch = _rebuilt(item)
        if batch is None:
            report.unreadable += 1
            continue
        again = sink.apply(batch, segment=item.segment)
        if item.id in {q.id for q in again}:
            report.refused += 1  # refused for the same reason: the same row, kept
            continue
        forget_quarantined(sink.db, item.id)  # applied, or set aside anew with a new reason
        if again:
            report.refused += 1
        else:
            report.applied += 1
    return report


def _rebuilt(item: Quarantined) -> Batch | None:
    """The batch a set-aside record came from, or None if it cannot be rebuilt."""
    if item.run_id is None or item.kind == "malformed":
        return None
    try:
        data = json.loads(item.record)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    batch = Batch(item.run_id)
    if item.kind in ("metric", "metrics"):
        points = (
            data.get("points")
            if item.kind == "metrics"
            else [[data.get("step"), data.get("value"), data.get("timestamp")]]
        )
        if not isinstance(points, list):
            return None
        for point in points:
            if not (isinstance(point, list) and len(point) == 3):
                return None
            step, value, ts = point
            numbers = (value if value is not None else 0.0, ts)
            if not isinstance(step, int) or not all(
                isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers
            ):
                return None
            key = str(data.get("key"))
            batch.add(MetricPoint(key, math.nan if value is None else float(value), step, ts))
        return batch
    data.setdefault("time", item.record_time or item.quarantined_at)
    batch.add_event(Event(item.kind, data))
    return batch
