"""Recording what a served model answered, off the request path and without losing it.

``Recorder.record`` copies a batch into this process's journal segment (the tracking
journal: a locked, memory-mapped file, so a ``kill -9`` loses nothing ``record`` returned
from) and queues it in memory; the tracking flusher's thread writes queued batches to the
store every ``interval`` seconds, idempotently (a row already stored is skipped). At most
``max_queued_rows`` rows wait in memory: past that, and whenever the store cannot be reached,
records wait in the journal only and are read back from it, so a server's memory stays
bounded however long the store is away. A segment whose process died is written by the next
server to start on the workspace (``replay_abandoned``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from hone.blobs import BlobStore
from hone.errors import HoneError
from hone.ids import new_id
from hone.predictions.records import (
    COLUMNS,
    KIND,
    Answered,
    StoredRows,
    decode_answered,
    encode_answered,
    stored_rows,
)
from hone.store.database import Database
from hone.tracking.flusher import Flusher
from hone.tracking.journal import JournalWriter, abandoned_segments, remove_segment, set_aside
from hone.tracking.records import Event, Malformed
from hone.tracking.scan import FrameScanner

__all__ = ["Recorder", "RecorderStats", "replay_abandoned", "write_rows"]

log = logging.getLogger("hone.predictions")

#: Rows per store transaction.
WRITE_ROWS = 2000
#: A drained segment larger than this is replaced by a fresh one (the old one removed).
ROTATE_BYTES = 64 << 20


#: Rows per INSERT statement: one statement of many rows rather than one per row, so the
#: driver gives up and takes back the GIL (around each statement it runs) a hundred times
#: less often, sparing the server's event loop thread.
ROWS_PER_STATEMENT = 100


def _insert(rows: int, mark: str) -> str:
    one = "(" + ", ".join([mark] * len(COLUMNS)) + ")"
    return (
        f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES {', '.join([one] * rows)} "
        "ON CONFLICT (request_id) DO NOTHING"
    )


def write_rows(db: Database, blobs: BlobStore, stored: StoredRows) -> int:
    """Store the rows in one transaction; rows whose request id is stored already are
    skipped, so writing the same records twice changes nothing. Returns how many were new.
    (The driver's own statements: SQLAlchemy's per-row work would double a server's
    recording cost.)"""
    if not stored.rows:
        return 0
    for data in stored.blobs:
        blobs.put_bytes(data)
    rows = stored.rows
    mark = "?" if db.engine.dialect.paramstyle == "qmark" else "%s"
    full, rest = divmod(len(rows), ROWS_PER_STATEMENT)
    added = 0
    with db.write() as conn:
        for i in range(0, full * ROWS_PER_STATEMENT, ROWS_PER_STATEMENT):
            group = tuple(chain.from_iterable(rows[i : i + ROWS_PER_STATEMENT]))
            added += max(0, conn.exec_driver_sql(_insert(ROWS_PER_STATEMENT, mark), group).rowcount)
        if rest:
            tail = tuple(chain.from_iterable(rows[full * ROWS_PER_STATEMENT :]))
            added += max(0, conn.exec_driver_sql(_insert(rest, mark), tail).rowcount)
    return added


def _journal_rows(scanner: FrameScanner, where: str) -> Iterator[tuple[int, StoredRows]]:
    """The rows of the scanner's journal range, in chunks of about ``WRITE_ROWS``, each with
    the offset its last record ends at; records that cannot be read are skipped, said in
    the log (damage the scanner stepped over is in its ``skipped``)."""
    rows, last = StoredRows(), scanner.start
    for offset, record in scanner.frames():
        last = offset
        if isinstance(record, Malformed):
            log.warning(
                "hone: skipping an unreadable prediction record in %s: %s", where, record.reason
            )
        elif isinstance(record, Event) and record.kind == KIND:
            try:
                rows.extend(stored_rows(decode_answered(record)))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("hone: skipping a damaged prediction record in %s: %s", where, exc)
        if len(rows) >= WRITE_ROWS:
            yield last, rows
            rows = StoredRows()
    yield last, rows


class RecorderStats:
    """Counters the server's /metrics shows (read without a lock: plain integers)."""

    def __init__(self) -> None:
        self.recorded = 0  # rows handed to record()
        self.written = 0  # rows the store holds
        self.queued = 0  # rows waiting in memory
        self.spilled = 0  # rows that waited in the journal only (memory queue full)
        self.failures = 0  # flushes that failed (the store unreachable, say)
        self.full_since: float | None = None  # when the memory queue last filled up


class Recorder:
    """Journals answered batches and writes them to the store in the background."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        journal_dir: Path,
        *,
        interval: float = 1.0,
        max_queued_rows: int = 100_000,
    ) -> None:
        self.id = f"predictions-{new_id()[:8]}"
        self.lock = threading.Lock()  # one flush at a time (the flusher's, or close's)
        self.db, self.blobs = db, blobs
        self.journal_dir = journal_dir
        self.max_queued_rows = max_queued_rows
        self.stats = RecorderStats()
        self._queue_lock = threading.Lock()  # record() and the hand-over to a flush
        self._journal = JournalWriter(journal_dir)
        self._queue: list[Answered] = []  # journaled, on their way to the store
        self._queued_rows = 0
        # Frames from this offset on are in the journal but not in memory; None: none are.
        self._spill_from: int | None = None
        self._flushed_to = 0  # every frame before this offset is in the store
        self._closed = False
        self._flusher = Flusher(interval=interval)
        self._flusher.register(self)

    # -- the request side -------------------------------------------------------------

    def record(self, batch: Answered) -> None:
        """Journal ``batch`` and queue it for the store (microseconds; no I/O wait)."""
        frames = encode_answered(batch)
        with self._queue_lock:
            if self._closed:
                raise HoneError("the prediction recorder is closed")
            start = self._journal.offset
            for frame in frames:
                self._journal.write(frame)
            self.stats.recorded += batch.rows
            if self._spill_from is None and self._queued_rows + batch.rows <= self.max_queued_rows:
                self._queue.append(batch)
                self._queued_rows += batch.rows
                self.stats.queued = self._queued_rows
                return
            if self._spill_from is None:
                self._spill_from = start
                self.stats.full_since = time.time()
                log.warning(
                    "hone: %d predictions wait to be written to the store; the rest wait in "
                    "the journal %s until it catches up",
                    self._queued_rows,
                    self._journal.path,
                )
            self.stats.spilled += batch.rows

    # -- the flusher's side -------------------------------------------------------------

    def flush(self) -> None:
        """Write what waits to the store (called under ``self.lock``)."""
        with self._queue_lock:
            queue, self._queue = self._queue, []
            self._queued_rows = 0
            self.stats.queued = 0
            spill_from = self._spill_from
            end = self._journal.offset
            memory_end = spill_from if spill_from is not None else end
        try:
            rows = StoredRows()
            for batch in queue:
                rows.extend(stored_rows(batch))
                if len(rows) >= WRITE_ROWS:
                    write_rows(self.db, self.blobs, rows)
                    rows = StoredRows()
            write_rows(self.db, self.blobs, rows)
            self._advance(memory_end, sum(batch.rows for batch in queue))
            if spill_from is not None:
                self._flush_journal(spill_from, end)
        except Exception:
            self.stats.failures += 1
            with self._queue_lock:
                # Everything past the last write is in the journal: read it back from there.
                self._queue, self._queued_rows, self.stats.queued = [], 0, 0
                self._spill_from = self._flushed_to
                if self.stats.full_since is None:
                    self.stats.full_since = time.time()
            raise
        self._maybe_rotate()

    def _advance(self, offset: int, rows: int) -> None:
        self._flushed_to = max(self._flushed_to, offset)
        self.stats.written += rows

    def _flush_journal(self, start: int, end: int) -> None:
        scanner = FrameScanner(self._journal.fd, start, end)
        for offset, rows in _journal_rows(scanner, str(self._journal.path)):
            write_rows(self.db, self.blobs, rows)
            self._advance(offset, len(rows))
        self._advance(end, 0)
        with self._queue_lock:
            if self._spill_from is not None and self._journal.offset == end:
                self._spill_from, self.stats.full_since = None, None
            elif self._spill_from is not None:
                self._spill_from = end  # written meanwhile: next time

    def _maybe_rotate(self) -> None:
        with self._queue_lock:
            if (
                self._closed
                or self._spill_from is not None
                or self._queue
                or self._flushed_to < self._journal.offset
                or self._journal.offset < ROTATE_BYTES
            ):
                return
            old, self._journal = self._journal, JournalWriter(self.journal_dir)
            self._flushed_to = 0
        remove_segment(old.path)
        old.close(trim=False)

    def inherited_by_fork(self) -> None:
        self._journal.abandon()

    # -- ending -------------------------------------------------------------------------

    def close(self) -> bool:
        """Write everything recorded to the store and remove the journal segment. False if
        the store could not take it all: the segment stays, for the next server (or
        ``replay_abandoned``) to write."""
        with self._queue_lock:
            self._closed = True
        self._flusher.unregister(self)
        with self.lock:
            try:
                self.flush()
                drained = True
            except Exception as exc:
                log.warning(
                    "hone: %d predictions could not be written to the store now (%s); they "
                    "are kept in %s and written when a server next starts on this workspace",
                    self.stats.recorded - self.stats.written,
                    exc,
                    self._journal.path,
                )
                drained = False
        if drained:
            remove_segment(self._journal.path)
            self._journal.close(trim=False)
        else:
            self._journal.close()
        return drained

    @property
    def journal_path(self) -> Path:
        return self._journal.path


def replay_abandoned(db: Database, blobs: BlobStore, journal_dir: Path) -> int:
    """Write to the store the predictions of segments whose process died (a server killed
    or stopped while the store was away); returns how many rows were new to the store. A segment is
    removed once all of it is stored; a damaged one is set aside in ``damaged/``."""
    written = 0
    for segment in abandoned_segments(journal_dir):
        scanner = FrameScanner(segment.fd, 0, segment.path.stat().st_size)
        for _, rows in _journal_rows(scanner, str(segment.path)):
            written += write_rows(db, blobs, rows)
        if scanner.skipped:
            where = set_aside(segment.path)
            log.warning("hone: a damaged prediction journal was set aside in %s", where)
        else:
            remove_segment(segment.path)
    return written
