"""Moves records into the store: live runs in the background, journals on replay.

A live run hands its pending records to the store from memory (the journal beside them is
the durable copy). ``flush_segment`` reads a journal file instead: it replays segments of
dead processes, and a live run's own segment when an in-memory flush failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hone.errors import HoneError
from hone.tracking.journal import JournalWriter, remove_segment
from hone.tracking.records import decode_frames
from hone.tracking.sink import Batch, StoreSink

__all__ = ["FlushResult", "Flushable", "Flusher", "SegmentCursor", "flush_segment"]

log = logging.getLogger("hone.tracking")

#: Records applied per store transaction; bounds memory when a long journal is replayed.
MAX_BATCH_RECORDS = 100_000
MAX_READ_BYTES = 64 << 20
#: Retired segments wake the flusher at this many, bounding open descriptors.
RETIRE_BATCH = 32
#: Emptied segments a process keeps for its next runs.
SPARE_SEGMENTS = 4


@dataclass
class SegmentCursor:
    """How far one segment has been committed to the store."""

    run_id: str
    path: Path
    offset: int = 0


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
    committed transaction. One caller per segment at a time: a replayer holds the segment's
    flock, a live run its own ``lock``.
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
                torn = len(data.rstrip(b"\0"))
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

    def __init__(self, interval: float = 1.0, on_tick: Callable[[], None] | None = None) -> None:
        self.interval = interval
        self._on_tick = on_tick
        self._live: dict[int, Flushable] = {}
        self._retired: list[JournalWriter] = []
        self._spare: list[JournalWriter] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_at = 0.0

    def register(self, item: Flushable) -> None:
        with self._lock:
            self._live[id(item)] = item
            self._ensure_thread()

    def retire(self, writer: JournalWriter) -> None:
        """Hand back a segment whose records are all in the store.

        It is emptied and kept for this process's next run if fewer than
        ``SPARE_SEGMENTS`` are kept, else deleted by the flusher thread, off the caller's
        path (deleting a file costs more than the rest of a short run's end). If the
        process dies first, the segment is replayed once more, which changes nothing.
        """
        with self._lock:
            keep = len(self._spare) < SPARE_SEGMENTS
        if keep:  # emptying costs ~20 us: cheaper here than a thread hand-off
            writer.recycle()
            with self._lock:
                self._spare.append(writer)
            return
        with self._lock:
            self._retired.append(writer)
            self._ensure_thread()
            if len(self._retired) >= RETIRE_BATCH:
                self._wake.set()

    def writer(self, journal_dir: Path) -> JournalWriter:
        """An empty segment for a new run: a recycled one if this process has one."""
        with self._lock:
            if self._spare:
                return self._spare.pop()
        return JournalWriter(journal_dir)

    def close_retired(self, *, keep_spares: bool = True) -> None:
        """Empty retired segments for reuse (a few), delete the rest."""
        with self._lock:
            retired, self._retired = self._retired, []
            if not keep_spares:
                retired += self._spare
                self._spare = []
        for writer in retired:
            with self._lock:
                keep = keep_spares and len(self._spare) < SPARE_SEGMENTS
            if keep:
                writer.recycle()
                with self._lock:
                    self._spare.append(writer)
            else:
                remove_segment(writer.path)
                writer.close(trim=False)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="hone-flusher", daemon=True)
            self._thread.start()

    def unregister(self, item: Flushable) -> None:
        with self._lock:
            self._live.pop(id(item), None)

    def _loop(self) -> None:
        next_tick = time.monotonic() + self.interval
        while True:
            self._wake.wait(max(0.0, next_tick - time.monotonic()))
            self._wake.clear()
            self.close_retired()
            if time.monotonic() < next_tick:
                continue  # woken for retired segments only
            next_tick = time.monotonic() + self.interval
            self._tick()

    def _tick(self) -> None:
        """Periodic work: flush live runs, then the store's housekeeping (checkpoints)."""
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
        if self._on_tick is not None:
            try:
                self._on_tick()
            except (HoneError, OSError) as exc:
                self.warn(exc)

    def warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            log.warning("hone: %s; points stay in the journal and will be synced later", exc)
