"""Per-run journal segments on local disk: the write-ahead log of every tracking call.

Each process that writes to a run owns one segment file,
``<workspace>/journals/<run_id>/<segment_id>.jnl``, holds an exclusive ``flock`` on it while
it lives, and copies each frame into a shared memory map of it (a write to the OS, no
fsync), so a ``kill -9`` loses nothing the call returned from. A segment whose lock can
be taken has no living writer: ``hone sync`` replays it.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hone.errors import HoneError, ValidationError
from hone.ids import new_id

__all__ = ["JournalWriter", "SegmentFile", "abandoned_segments", "segment_path"]

SUFFIX = ".jnl"
INITIAL_SIZE = 64 << 10
MAX_GROWTH = 64 << 20


def segment_path(journal_dir: Path, run_id: str, segment_id: str) -> Path:
    return journal_dir / run_id / f"{segment_id}{SUFFIX}"


@dataclass(frozen=True)
class SegmentFile:
    run_id: str
    path: Path


class JournalWriter:
    """Appends frames to one segment; the flock it holds marks the segment as live.

    The segment is a shared memory map of the file: a frame copied into it is in the
    kernel's page cache at once, so it survives the process (even ``kill -9``) exactly as
    an ``os.write`` would, without a system call per point. The file grows in doubling
    steps and is trimmed to its frames on close; after a crash it ends in zero padding,
    which readers take as the end.
    """

    def __init__(self, journal_dir: Path, run_id: str) -> None:
        self.run_id = run_id
        self.segment_id = new_id()
        self.path = segment_path(journal_dir, run_id, self.segment_id)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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

    @property
    def closed(self) -> bool:
        return self._sealed or self._fd is None

    def seal(self) -> None:
        """Refuse further writes but keep the lock, so no replayer claims the segment
        while its own process drains it."""
        self._sealed = True

    def write(self, frame: bytes) -> None:
        if self._sealed:
            raise ValidationError(f"run {self.run_id} has ended; start or resume a run to log")
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
    for run_dir in sorted(journal_dir.iterdir()):
        if not run_dir.is_dir():
            continue
        for path in sorted(run_dir.glob(f"*{SUFFIX}")):
            fd = _claim(path)
            if fd is None:
                continue
            try:
                yield SegmentFile(run_dir.name, path)
            finally:
                os.close(fd)


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
    """Delete a fully flushed segment, and its run folder once empty."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()
