"""Moves records into the store: live runs in the background, journals on replay.

A live run hands its pending records to the store from memory (the journal beside them is
the durable copy). ``flush_segment`` reads a journal file instead: it replays segments of
dead processes, and a live run's own segment when an in-memory flush failed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hone.errors import HoneError
from hone.tracking.records import decode_frames
from hone.tracking.sink import Batch, StoreSink

__all__ = ["FlushResult", "Flushable", "Flusher", "SegmentCursor", "flush_segment"]

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
    #: Bytes past the last intact frame, not counting zero padding (a crash mid-copy).
    torn_bytes: int
    last_timestamp: float | None
    saw_end: bool


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
            count = 0
            for end_offset, record in decode_frames(data):
                batch.add(record)
                count += 1
                end = cursor.offset + end_offset
                if count >= MAX_BATCH_RECORDS:
                    break
            if end == cursor.offset:
                torn = len(bytes(data).rstrip(b"\0"))
                return FlushResult(records, cursor.offset, torn, last_ts, saw_end)
            sink.apply(batch)
            records += count
            last_ts = batch.last_timestamp or last_ts
            saw_end = saw_end or any(s["kind"] == "end" for s in batch.statuses)
            cursor.offset = end


class Flushable(Protocol):
    """Something with pending records (a live run) that the flusher drains."""

    lock: threading.Lock

    def flush(self) -> None: ...


class Flusher:
    """A daemon thread that flushes every registered live run every ``interval`` seconds."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._live: dict[int, Flushable] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._warned_at = 0.0

    def register(self, item: Flushable) -> None:
        with self._lock:
            self._live[id(item)] = item
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="hone-flusher", daemon=True)
                self._thread.start()

    def unregister(self, item: Flushable) -> None:
        with self._lock:
            self._live.pop(id(item), None)

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                live = list(self._live.values())
            for item in live:
                # A run ending in its own thread flushes itself; never wait on it here.
                if not item.lock.acquire(blocking=False):
                    continue
                try:
                    item.flush()
                except (HoneError, OSError) as exc:
                    self.warn(exc)
                finally:
                    item.lock.release()

    def warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            log.warning("hone: %s; points stay in the journal and will be synced later", exc)
