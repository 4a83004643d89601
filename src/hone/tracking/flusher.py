"""The background thread that moves live runs' records into the store.

A live run hands its pending records to the store from memory (the journal beside them is
the durable copy), or from its journal when it queued too much to keep in memory. The
thread holds no lock of its own while it talks to the store, so starting and ending runs
never wait on the network; and it survives any exception, saying so in the log: a failed
flush leaves the records in the journal, to be read back on the next tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from hone.errors import HoneError
from hone.tracking.journal import JournalWriter, remove_segment

__all__ = ["Flushable", "Flusher"]

log = logging.getLogger("hone.tracking")

#: Retired segments wake the flusher at this many, bounding open descriptors.
RETIRE_BATCH = 32
#: Emptied segments a process keeps for its next runs.
SPARE_SEGMENTS = 4
#: At most one warning about failing flushes per this many seconds.
WARN_EVERY_S = 60.0


class Flushable(Protocol):
    """Something with pending records (a live run) that the flusher drains."""

    id: str
    lock: threading.Lock

    def flush(self) -> None: ...

    def inherited_by_fork(self) -> None: ...


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
        self._flush_now = False
        self._thread: threading.Thread | None = None
        self._warned_at = float("-inf")

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
        if keep and writer.recycle():  # emptying costs ~20 us: cheaper than a hand-off
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
            if keep and writer.recycle():
                with self._lock:
                    self._spare.append(writer)
            else:
                remove_segment(writer.path)
                writer.close(trim=False)

    def forget_in_child(self) -> None:
        """In a forked child: the live runs and segments are the parent's. The child's
        copies of the segments' descriptors are closed (the parent keeps its own, and its
        locks); nothing is removed or trimmed."""
        self._lock = threading.Lock()
        for item in self._live.values():
            item.inherited_by_fork()
        self._live.clear()
        for writer in self._retired + self._spare:
            writer.abandon()
        self._retired, self._spare = [], []
        self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="hone-flusher", daemon=True)
            self._thread.start()

    def unregister(self, item: Flushable) -> None:
        with self._lock:
            self._live.pop(id(item), None)

    def wake(self) -> None:
        """Flush now rather than at the next tick (a run's memory queue is full)."""
        self._flush_now = True
        self._wake.set()

    def _loop(self) -> None:
        next_tick = time.monotonic() + self.interval
        while True:
            self._wake.wait(max(0.0, next_tick - time.monotonic()))
            self._wake.clear()
            try:
                self.close_retired()
                if time.monotonic() < next_tick and not self._flush_now:
                    continue  # woken for retired segments only
                self._flush_now = False
                next_tick = time.monotonic() + self.interval
                self._tick()
            except Exception as exc:  # never let the thread die: runs rely on it
                self.warn(exc, "the flusher")

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
            except Exception as exc:
                self.warn(exc, f"run {item.id}")
            finally:
                item.lock.release()
        if self._on_tick is not None:
            try:
                self._on_tick()
            except Exception as exc:
                self.warn(exc, "the store's housekeeping")

    def warn(self, exc: Exception, what: str) -> None:
        now = time.monotonic()
        if now - self._warned_at > WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "hone: flushing %s failed (%s); its records stay in the journal and are "
                "retried (the flusher carries on)",
                what,
                exc,
                exc_info=None if isinstance(exc, (HoneError, OSError)) else exc,
            )
