"""Moves journal records into the store, in the background and at run end.

The flusher *tails* each live segment file from the offset it last committed: live flushing
and crash replay are the same code, and a store outage costs nothing but a growing file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hone.errors import HoneError, StoreUnavailableError, WorkspaceError
from hone.tracking.records import decode_frames
from hone.tracking.sink import Batch, StoreSink

__all__ = ["FlushResult", "Flusher", "SegmentCursor", "flush_segment"]

log = logging.getLogger("hone.tracking")

#: Records applied per store transaction; bounds memory when a long journal is replayed.
MAX_BATCH_RECORDS = 100_000
MAX_READ_BYTES = 64 << 20


@dataclass
class SegmentCursor:
    """How far one segment has been committed to the store."""

    run_id: str
    path: Path
    offset: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class FlushResult:
    records: int
    offset: int
    size: int
    last_timestamp: float | None
    saw_end: bool

    @property
    def torn_bytes(self) -> int:
        """Bytes past the last intact frame (a crash mid-write leaves some)."""
        return self.size - self.offset


def flush_segment(cursor: SegmentCursor, sink: StoreSink) -> FlushResult:
    """Apply everything past ``cursor.offset`` to the store and advance it.

    Raises ``StoreUnavailableError``/``WorkspaceError`` with the cursor unmoved past the last
    committed transaction. Callers serialise on ``cursor.lock``.
    """
    records = 0
    last_ts: float | None = None
    saw_end = False
    with cursor.path.open("rb") as fh:
        while True:
            fh.seek(cursor.offset)
            data = fh.read(MAX_READ_BYTES)
            batch = Batch(cursor.run_id)
            end = cursor.offset
            for end_offset, record in decode_frames(data):
                batch.add(record)
                end = cursor.offset + end_offset
                if len(batch) >= MAX_BATCH_RECORDS:
                    break
            if end == cursor.offset:
                size = os.fstat(fh.fileno()).st_size
                return FlushResult(records, cursor.offset, size, last_ts, saw_end)
            sink.apply(batch)
            records += len(batch)
            last_ts = batch.last_timestamp or last_ts
            saw_end = saw_end or any(s["kind"] == "end" for s in batch.statuses)
            cursor.offset = end


class Flusher:
    """A daemon thread that flushes every registered live segment every ``interval`` s."""

    def __init__(self, sink: StoreSink, interval: float = 0.5) -> None:
        self.sink = sink
        self.interval = interval
        self._cursors: dict[Path, SegmentCursor] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_at = 0.0

    def register(self, cursor: SegmentCursor) -> None:
        with self._lock:
            self._cursors[cursor.path] = cursor
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="hone-flusher", daemon=True)
                self._thread.start()

    def unregister(self, cursor: SegmentCursor) -> None:
        with self._lock:
            self._cursors.pop(cursor.path, None)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                cursors = list(self._cursors.values())
            for cursor in cursors:
                # A run ending in its own thread flushes itself; never wait on it here.
                if not cursor.lock.acquire(blocking=False):
                    continue
                try:
                    flush_segment(cursor, self.sink)
                except (StoreUnavailableError, WorkspaceError) as exc:
                    self._warn(exc)
                except (HoneError, OSError) as exc:  # pragma: no cover - defensive
                    self._warn(exc)
                finally:
                    cursor.lock.release()

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            log.warning("hone: %s; points stay in the journal and will be synced later", exc)
