"""Journal segments on local disk: the write-ahead log of every tracking call.

Each live run writes to one segment file, ``<workspace>/journals/<segment_id>.jnl``, whose
first record names the run. Its process holds an exclusive ``flock`` on it while it lives
and copies each frame into a shared memory map of it (a write to the OS, no fsync), so a
``kill -9`` loses nothing the call returned from. A segment whose lock can be taken has no
living writer: ``hone sync`` replays it.

Once a run's records are all in the store its segment is emptied and kept, still locked,
for the process's next run: short runs (tuning trials) then touch no directory at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hone.errors import HoneError, ValidationError
from hone.ids import new_id
from hone.tracking.records import Event, decode_frames

__all__ = ["JournalWriter", "SegmentFile", "abandoned_segments", "remove_segment"]

SUFFIX = ".jnl"
INITIAL_SIZE = 64 << 10
MAX_GROWTH = 64 << 20
#: Events that open a segment and name its run; start and resume also own the run's status.
OPENING_EVENTS = ("start", "resume", "attach")


@dataclass(frozen=True)
class SegmentFile:
    path: Path
    run_id: str | None  # None: the segment holds no record yet
    owns_run: bool  # it started or resumed its run (rather than attached to it)


class JournalWriter:
    """Appends frames to one segment; the flock it holds marks the segment as live.

    The segment is a shared memory map of the file: a frame copied into it is in the
    kernel's page cache at once, so it survives the process (even ``kill -9``) exactly as
    an ``os.write`` would, without a system call per point. The file grows in doubling
    steps and is trimmed to its frames on close; after a crash it ends in zero padding,
    which readers take as the end.
    """

    def __init__(self, journal_dir: Path) -> None:
        self.path = journal_dir / f"{new_id()}{SUFFIX}"
        try:
            journal_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, INITIAL_SIZE)
            self._map = mmap.mmap(fd, INITIAL_SIZE)
        except OSError as exc:
            raise HoneError(f"cannot create the run journal {self.path}: {exc}") from exc
        self._fd: int | None = fd
        self._size = INITIAL_SIZE
        self.offset = 0
        self._sealed = False
        # Reserving a frame's place and copying it must not interleave between threads.
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._sealed or self._fd is None

    def seal(self) -> None:
        """Refuse further writes but keep the lock, so no replayer claims the segment
        while its own process drains it."""
        self._sealed = True

    def write(self, frame: bytes) -> None:
        with self._lock:
            if self._sealed:
                raise ValidationError("this run has ended; start or resume a run to log")
            start = self.offset
            end = start + len(frame)
            if end > self._size:
                self._grow(end)
            self._map[start:end] = frame
            self.offset = end

    def _grow(self, needed: int) -> None:
        size = self._size
        while size < needed:
            size += min(size, MAX_GROWTH)
        try:
            self._map.resize(size)
        except OSError as exc:
            raise HoneError(f"cannot grow the run journal {self.path}: {exc}") from exc
        self._size = size

    def recycle(self) -> None:
        """Empty a drained segment for another run of this process (the lock stays)."""
        assert self._fd is not None, "a closed segment cannot be reused"
        self._map.close()
        os.ftruncate(self._fd, 0)
        os.ftruncate(self._fd, INITIAL_SIZE)
        self._map = mmap.mmap(self._fd, INITIAL_SIZE)
        self._size = INITIAL_SIZE
        self.offset = 0
        self._sealed = False

    def close(self, *, trim: bool = True) -> None:
        """Release the segment (its lock goes with the descriptor).

        ``trim`` cuts the zero padding off a segment that stays on disk; a segment
        already removed needs no trimming.
        """
        self._sealed = True
        if self._fd is None:
            return
        self._map.close()
        if trim:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.offset)
        os.close(self._fd)
        self._fd = None


def abandoned_segments(journal_dir: Path) -> Iterator[SegmentFile]:
    """Claim, one at a time, the segments no living process holds.

    Each segment is yielded while this process holds its lock, so two replayers never
    work on the same one; a segment deleted by another replayer meanwhile is skipped.
    The lock is released when the loop moves on.
    """
    if not journal_dir.is_dir():
        return
    for path in sorted(journal_dir.glob(f"*{SUFFIX}")):
        fd = _claim(path)
        if fd is None:
            continue
        try:
            yield _head(path)
        finally:
            os.close(fd)


def _head(path: Path) -> SegmentFile:
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    for _, record in decode_frames(head):
        if isinstance(record, Event) and record.kind in OPENING_EVENTS:
            run_id = record.data.get("run_id")
            if isinstance(run_id, str):
                return SegmentFile(path, run_id, record.kind != "attach")
        break
    return SegmentFile(path, None, False)


def _claim(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if os.fstat(fd).st_nlink == 0:  # replayed and removed while we waited
        os.close(fd)
        return None
    return fd


def remove_segment(path: Path) -> None:
    """Delete a fully flushed segment."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
