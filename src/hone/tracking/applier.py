"""Applying a range of a journal segment to the store, in bounded batches.

Used for the segments of dead processes (``hone sync``), and by a live run for the part of
its own segment that is not (or no longer) queued in memory: past the memory bound, or after
a flush from memory failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hone.tracking.batch import Batch
from hone.tracking.quarantine import Quarantined
from hone.tracking.scan import FrameScanner, Skipped
from hone.tracking.sink import StoreSink

__all__ = ["MAX_BATCH_RECORDS", "AppliedRange", "apply_range"]

#: Records applied per store transaction; bounds memory when a long journal is read back.
MAX_BATCH_RECORDS = 50_000
KEEP_QUARANTINED = 1000


@dataclass
class AppliedRange:
    records: int = 0
    #: The offset up to which everything is in the store.
    offset: int = 0
    torn_bytes: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    #: What was set aside (the first ``KEEP_QUARANTINED``; all of them are in the store).
    quarantined: list[Quarantined] = field(default_factory=list)
    quarantined_count: int = 0
    last_timestamp: float | None = None
    last_event_time: float | None = None
    saw_end: bool = False


def apply_range(
    fd: int, start: int, end: int, run_id: str, sink: StoreSink, *, segment: str | None = None
) -> AppliedRange:
    """Apply the intact frames of ``fd`` in [start, end) to run ``run_id``.

    Raises what ``StoreSink.apply`` raises when the store cannot take a batch; everything
    before the failing batch is committed then (replaying it again changes nothing).
    """
    scanner = FrameScanner(fd, start, end)
    result = AppliedRange(offset=start)
    while True:
        batch = Batch(run_id)
        count = scanner.read_into(batch, MAX_BATCH_RECORDS)
        if not count:
            break
        set_aside = sink.apply(batch, segment=segment)
        result.records += count
        if batch.last_timestamp is not None:
            result.last_timestamp = batch.last_timestamp
        if batch.last_event_time is not None:
            result.last_event_time = batch.last_event_time
        result.saw_end = result.saw_end or any(s["kind"] == "end" for s in batch.statuses)
        result.quarantined_count += len(set_aside)
        room = KEEP_QUARANTINED - len(result.quarantined)
        result.quarantined += set_aside[: max(room, 0)]
    result.offset = end
    result.torn_bytes = scanner.torn_bytes
    result.skipped = scanner.skipped
    return result
