"""Journal segments on local disk: the write-ahead log of every tracking call.

Each live run writes to one segment file, ``<workspace>/journals/<segment_id>.jnl``, whose
first record names the run. Its process holds an exclusive ``flock`` on it while it lives
and copies each frame into a shared memory map of it (a write to the OS, no fsync), so a
``kill -9`` loses nothing the call returned from. A segment whose lock can be taken has no
living writer: ``hone sync`` replays it.

A segment is created under a temporary name, locked, and only then renamed to ``.jnl``, so
no replayer can ever see (and remove) a live segment that is not yet locked. Its disk space
is reserved (``posix_fallocate``) before it is mapped: writing into a mapped page the disk
cannot back would kill the process with SIGBUS, while a failed reservation is a clean
``DiskFullError``. Only a window of the file is mapped at a time, so a long run's journal
does not grow the process's resident memory.

Once a run's records are all in the store its segment is emptied and kept, still locked,
for the process's next run: short runs (tuning trials) then touch no directory at all.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import mmap
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hone.errors import DiskFullError, HoneError, ValidationError
from hone.ids import new_id
from hone.tracking.records import Event, decode_frames
from hone.tracking.scan import FrameScanner

__all__ = [
    "DAMAGED_DIR",
    "JournalWriter",
    "SegmentFile",
    "abandoned_segments",
    "remove_segment",
    "runs_written_now",
    "set_aside",
]

log = logging.getLogger("hone.tracking")

SUFFIX = ".jnl"
PENDING_SUFFIX = ".jnl.new"
DAMAGED_DIR = "damaged"
INITIAL_SIZE = 64 << 10
MAX_GROWTH = 16 << 20
#: At most this much of a segment is mapped (and so resident) at a time.
WINDOW = 16 << 20
#: Reserved room at the end of every segment that only a run's end record may use.
FINAL_ROOM = 4096
#: A pending segment older than this belongs to a process that died while creating it.
STALE_PENDING_S = 300.0
_PAGE = mmap.ALLOCATIONGRANULARITY
#: Events that open a segment and name its run; start and resume also own the run's status.
OPENING_EVENTS = ("start", "resume", "attach")


@dataclass(frozen=True)
class SegmentFile:
    path: Path
    fd: int  # open and locked while the claim lasts
    run_id: str | None  # None: the segment holds no record yet, or its head is unreadable
    owns_run: bool  # it started or resumed its run (rather than attached to it)
    empty: bool = True  # no byte but zeros: a spare emptied for reuse, or never written


class JournalWriter:
    """Appends frames to one segment; the flock it holds marks the segment as live.

    Not thread-safe by itself: the run that owns it serializes ``write`` (it queues the same
    record in memory under the same lock).
    """

    def __init__(self, journal_dir: Path) -> None:
        name = new_id()
        self.path = journal_dir / f"{name}{SUFFIX}"
        pending = journal_dir / f"{name}{PENDING_SUFFIX}"
        try:
            journal_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise _journal_error(exc, journal_dir, "create the run journal") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _reserve(fd, 0, INITIAL_SIZE, journal_dir)
            os.rename(pending, self.path)
        except BaseException as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                pending.unlink()
            if isinstance(exc, OSError):
                raise _journal_error(exc, journal_dir, "create the run journal") from exc
            raise
        self._fd: int | None = fd
        self._dir = journal_dir
        self._size = INITIAL_SIZE
        self._map: mmap.mmap | None = mmap.mmap(fd, INITIAL_SIZE)
        self._map_start = 0
        # Writes that end before this need neither a new window nor a larger file.
        self._room_end = INITIAL_SIZE - FINAL_ROOM
        self.offset = 0
        self._sealed = False

    @property
    def closed(self) -> bool:
        return self._sealed or self._fd is None

    @property
    def fd(self) -> int:
        assert self._fd is not None, "the segment is closed"
        return self._fd

    def seal(self) -> None:
        """Refuse further writes but keep the lock, so no replayer claims the segment
        while its own process drains it."""
        self._sealed = True
        self._room_end = -1  # every write now takes the slow path, which refuses it

    def write(self, frame: bytes) -> int:
        """Append ``frame``; returns the offset after it."""
        end = self.offset + len(frame)
        if end > self._room_end or self._sealed:
            return self._append_slowly(frame, FINAL_ROOM)
        base = self._map_start
        self._map[self.offset - base : end - base] = frame  # type: ignore[index]
        self.offset = end
        return end

    def write_final(self, frame: bytes) -> int:
        """Append the run's last record. It may use the room every segment keeps for it,
        so that a run can record its end even when the disk has just filled up."""
        return self._append_slowly(frame, 0)

    def _append_slowly(self, frame: bytes, keep: int) -> int:
        if self._sealed:
            raise ValidationError("this run has ended; start or resume a run to log")
        start = self.offset
        end = start + len(frame)
        window = self._map
        if window is None or end + keep > self._size or end > self._map_start + len(window):
            window = self._move_window(start, end + keep)
        base = self._map_start
        window[start - base : end - base] = frame
        self.offset = end
        return end

    def _move_window(self, start: int, end: int) -> mmap.mmap:
        """Grow the file (reserving its blocks) to hold ``end`` bytes, and map a window
        that holds [start, end)."""
        if end > self._size:
            size = self._size
            while size < end:
                size += min(size, MAX_GROWTH)
            _reserve(self.fd, self._size, size - self._size, self._dir)
            self._size = size
        map_start = start - start % _PAGE
        length = min(self._size, max(end, map_start + WINDOW)) - map_start
        try:
            new_map = mmap.mmap(self.fd, length, offset=map_start)
        except OSError as exc:
            raise HoneError(f"cannot map the run journal {self.path}: {exc}") from exc
        if self._map is not None:
            self._map.close()
        self._map, self._map_start = new_map, map_start
        self._room_end = min(map_start + length, self._size - FINAL_ROOM)
        return new_map

    def recycle(self) -> bool:
        """Empty a drained segment for another run of this process (the lock stays).

        False if the segment can no longer be used (its file was removed by someone, or
        its space cannot be reserved again): the caller then closes it.
        """
        if self._fd is None or os.fstat(self._fd).st_nlink == 0:
            return False
        if self._size == INITIAL_SIZE and self._map is not None and self._map_start == 0:
            # A short run's segment: zero what it used, in place. Truncating would free the
            # reserved blocks only to reserve them again (~160 us, most of a short run's end).
            self._map[: self.offset] = bytes(self.offset)
        else:
            if self._map is not None:
                self._map.close()
            try:
                os.ftruncate(self._fd, 0)
                _reserve(self._fd, 0, INITIAL_SIZE, self._dir)
                self._map = mmap.mmap(self._fd, INITIAL_SIZE)
            except (OSError, HoneError):
                self._map = None
                return False
        self._map_start = 0
        self._room_end = INITIAL_SIZE - FINAL_ROOM
        self._size = INITIAL_SIZE
        self.offset = 0
        self._sealed = False
        return True

    def abandon(self) -> None:
        """Let go of this process's copy of the segment without touching the file (a
        forked child's copy of its parent's segment)."""
        self.seal()
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self, *, trim: bool = True) -> None:
        """Release the segment (its lock goes with the descriptor).

        ``trim`` cuts the reserved room off a segment that stays on disk; a segment
        already removed needs no trimming.
        """
        self.seal()
        if self._fd is None:
            return
        if self._map is not None:
            self._map.close()
            self._map = None
        if trim:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.offset)
        os.close(self._fd)
        self._fd = None


def _reserve(fd: int, offset: int, length: int, where: Path) -> None:
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as exc:
        raise _journal_error(exc, where, "reserve room in the run journal") from exc


def _journal_error(exc: OSError, where: Path, doing: str) -> HoneError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            f"the disk holding the run journals {where} is full: cannot {doing} (what was "
            "logged before is safe; free some space, or set HONE_HOME to a larger disk)"
        )
    return HoneError(f"cannot {doing} in {where}: {exc.strerror or exc}")


def abandoned_segments(journal_dir: Path) -> Iterator[SegmentFile]:
    """Claim, one at a time, the segments no living process holds.

    Each segment is yielded while this process holds its lock, so two replayers never
    work on the same one; a segment deleted by another replayer meanwhile is skipped.
    The lock is released when the loop moves on. Pending segments left by a process that
    died while creating one are removed on the way.
    """
    if not journal_dir.is_dir():
        return
    _remove_stale_pending(journal_dir)
    for path in sorted(journal_dir.glob(f"*{SUFFIX}")):
        fd = _claim(path)
        if fd is None:
            continue
        try:
            yield _head(fd, path)
        finally:
            os.close(fd)


def runs_written_now(journal_dir: Path) -> set[str]:
    """The runs that living processes on this machine are journaling right now (their
    segments are locked): a run among them must not be taken over by another process."""
    found: set[str] = set()
    if not journal_dir.is_dir():
        return found
    for path in journal_dir.glob(f"*{SUFFIX}"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # held: its writer lives
                segment = _head(fd, path)
                if segment.run_id is not None:
                    found.add(segment.run_id)
        except OSError:
            continue
        finally:
            os.close(fd)  # also lets go of a lock taken on a free segment
    return found


def _head(fd: int, path: Path) -> SegmentFile:
    head = os.pread(fd, 1 << 16, 0)
    for _, record in decode_frames(head):
        if isinstance(record, Event) and record.kind in OPENING_EVENTS:
            run_id = record.data.get("run_id")
            if isinstance(run_id, str):
                return SegmentFile(path, fd, run_id, record.kind != "attach", empty=False)
        break
    if not head.strip(b"\0"):
        # A spare emptied for reuse (or a segment that died before its first record):
        # nothing in it, unless there is something past the first 64 KiB.
        size = os.fstat(fd).st_size
        scanner = FrameScanner(fd, 0, size)
        if not any(True for _ in scanner.frames()) and not scanner.torn_bytes:
            return SegmentFile(path, fd, None, False, empty=True)
    return SegmentFile(path, fd, None, False, empty=False)


def _claim(path: Path) -> int | None:
    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer, forever.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symlink, or something we may not read
        log.warning("hone: skipping %s in the journal folder: %s", path, exc.strerror or exc)
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        log.warning("hone: skipping %s in the journal folder: not a journal file", path)
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


def _remove_stale_pending(journal_dir: Path) -> None:
    now = time.time()
    for path in journal_dir.glob(f"*{PENDING_SUFFIX}"):
        with contextlib.suppress(OSError):
            if now - path.lstat().st_mtime > STALE_PENDING_S:
                fd = _claim(path)
                if fd is not None:
                    path.unlink()
                    os.close(fd)


def set_aside(path: Path) -> Path:
    """Move a segment that cannot be replayed into ``journals/damaged/``, for a person to
    look at; returns where it went."""
    target_dir = path.parent / DAMAGED_DIR
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    os.replace(path, target)
    return target


def remove_segment(path: Path) -> None:
    """Delete a fully flushed segment."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
