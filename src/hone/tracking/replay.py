"""``hone sync``: replay journals that no living process holds, and mark dead runs killed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from hone.tracking.flusher import SegmentCursor, flush_segment
from hone.tracking.journal import abandoned_segments, remove_segment
from hone.tracking.sink import StoreSink

__all__ = ["SyncReport", "sync_journals"]

log = logging.getLogger("hone.tracking")


@dataclass
class SyncReport:
    segments: int = 0
    records: int = 0
    torn_bytes: int = 0
    killed_runs: list[str] = field(default_factory=list)


def sync_journals(journal_dir: Path, sink: StoreSink, run_id: str | None = None) -> SyncReport:
    """Replay every abandoned segment (only ``run_id``'s, if given) into the store.

    A segment that started its run but never ended it belonged to a process that died: the
    run is marked ``killed`` at the time of its last record. Fully replayed segments are
    deleted. Store errors propagate with the remaining segments left in place.
    """
    report = SyncReport()
    for segment in abandoned_segments(journal_dir):
        if segment.run_id is None:  # emptied for reuse, or died before its first record
            remove_segment(segment.path)
            continue
        if run_id is not None and segment.run_id != run_id:
            continue
        cursor = SegmentCursor(segment.run_id, segment.path)
        result = flush_segment(cursor, sink)
        report.segments += 1
        report.records += result.records
        report.torn_bytes += result.torn_bytes
        if result.torn_bytes:
            log.warning(
                "hone: %s ends in %d bytes of a torn record (a crash mid-write); "
                "kept the %d intact records before it",
                segment.path,
                result.torn_bytes,
                result.records,
            )
        if not result.saw_end and segment.owns_run:
            end_time = result.last_timestamp or segment.path.stat().st_mtime
            if sink.mark_killed(segment.run_id, end_time):
                report.killed_runs.append(segment.run_id)
        remove_segment(segment.path)
    return report
