"""Decoded splits cached on this machine's disk, shared by every process that reads them.

A training job starts several worker processes on a machine, and each needs the same split
of the same version. Read directly, each would fetch every chunk, hash it, decode it and keep
a private copy. Here the first process to need ``(version, split, columns)`` reads and
verifies the chunks once and writes the decoded rows as an uncompressed Arrow IPC file under
``<workspace>/cache/splits/``; every process, the writer included, then maps that file
(``pa.memory_map``): its arrays are views of the page cache, one copy for the whole machine.

Contract:
- A file appears whole or not at all (a temp file in the same folder, fsync, rename), and one
  process at a time writes a key (an exclusive ``flock`` on the key's lock file); the others
  wait for it at most ``LOCK_WAIT_S`` seconds, then get a ``WorkspaceError`` naming the lock
  and the process holding it.
- A version id is the digest of the version's content, so a key (this format, version id,
  split, columns) names the same rows forever: files are never invalidated, only evicted.
- A file is used only if it is a plain file, its footer reads, its schema metadata holds
  this exact key and its row count, that count is the one the manifest promises, and every
  array's buffers are as long as its length needs. These checks are cheap on purpose: the
  bytes are not hashed again (the chunks were, when the file was written). A file that fails
  them is deleted and rebuilt, with a warning. What they cannot see: values changed in place
  inside a whole-looking file, and a file cut short in place (not replaced) while processes
  have it mapped, which the kernel answers with SIGBUS in those processes.
- ``HONE_SPLIT_CACHE_BYTES`` bounds the folder (8 GiB by default; 0 turns the cache off):
  before a file is written, the least recently used ones are deleted until it fits. Deleting
  a file that another process has mapped is safe (the mapping stays valid and the space
  returns when it is unmapped), so the bound holds for the folder, not for the page cache.
- The cache never fails a read that would work without it: a folder that cannot be written
  (read-only, full, not a folder) gives the rows in this process's own memory, as without
  the cache, with a one-line warning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from hone.errors import ValidationError, WorkspaceError

__all__ = [
    "DEFAULT_BYTES",
    "FORMAT",
    "LOCK_WAIT_S",
    "SIZE_ENV",
    "SplitKey",
    "cache_bytes",
    "cache_folder",
    "shared_table",
]

#: Part of every key: a change of layout gives new file names, never a stale read.
FORMAT = "hone.split-cache/2"  # 2: a checksum beside each file
SIZE_ENV = "HONE_SPLIT_CACHE_BYTES"
DEFAULT_BYTES = 8 << 30
#: How long a process waits for another to write the file it needs.
LOCK_WAIT_S = 600.0
_POLL_S = 0.05
_SUFFIX = ".arrow"
_SUM_SUFFIX = ".crc32"
_KEY, _ROWS = b"hone.split_cache.key", b"hone.split_cache.rows"
_SIZE = re.compile(r"([0-9]+)\s*(?:([kmgt])(?:i?b)?|b)?", re.IGNORECASE)
_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

log = logging.getLogger("hone.data")


@dataclass(frozen=True)
class SplitKey:
    """What a cache file holds: these columns of this split (None: every row) of a version."""

    version: str
    split: str | None
    columns: tuple[str, ...]

    @property
    def text(self) -> str:
        body = {
            "format": FORMAT,
            "version": self.version,
            "split": self.split,
            "columns": list(self.columns),
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @property
    def stem(self) -> str:
        """The file name's stem: hex only, so any split name makes a safe file name."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:32]

    @property
    def shown(self) -> str:
        split = "every row" if self.split is None else f"split {self.split!r}"
        return f"{split} of version {self.version[:12]}"


class _Damaged(Exception):
    """A cache file that is there but must not be used (the message says why)."""


def cache_folder(home: Path) -> Path:
    return home / "cache" / "splits"


def cache_bytes() -> int:
    """The folder's bound from ``HONE_SPLIT_CACHE_BYTES``: bytes, or a size such as 8G or
    512MiB (units of 1024); 0 turns the cache off. Anything else is refused by name."""
    text = os.environ.get(SIZE_ENV, "").strip()
    if not text:
        return DEFAULT_BYTES
    found = _SIZE.fullmatch(text)
    if found is None:
        raise ValidationError(
            f"{SIZE_ENV}={text!r} is not a size: give bytes (8589934592) or a size such as "
            "8G or 512M; 0 turns the split cache off"
        )
    unit = found.group(2).lower() if found.group(2) else None
    return int(found.group(1)) * _UNITS[unit]


def shared_table(
    folder: Path, key: SplitKey, rows: int, estimate: int, build: Callable[[], pa.Table]
) -> pa.Table:
    """The table ``build`` reads (``key.columns`` of the split, ``rows`` rows as the manifest
    says, about ``estimate`` bytes decoded), from this machine's cache file in ``folder``;
    the first process that needs it calls ``build`` and writes the file. Errors of
    ``build`` itself (a corrupt chunk) are raised as they are."""
    bound = cache_bytes()
    if bound == 0:
        return build()
    if estimate > bound:
        log.warning(
            "hone: %s is about %s decoded, more than the split cache holds (%s=%s): "
            "each process reads it into its own memory",
            key.shown,
            _size(estimate),
            SIZE_ENV,
            _size(bound),
        )
        return build()
    path = folder / f"{key.stem}{_SUFFIX}"
    with contextlib.suppress(FileNotFoundError, _Damaged):
        return _read(path, key, rows)  # the usual case: no lock, no decoding
    try:
        lock = _acquire(folder, key)
    except OSError as exc:
        _fall_back(folder, key, exc)
        return build()
    try:
        table = _fill(path, key, rows, estimate, bound, build)
    finally:
        os.close(lock)  # releases the flock
    # None: the cache cannot take it. Decoded after the lock is released, so the other
    # processes waiting on it learn the same at once and decode alongside, not in turn.
    return build() if table is None else table


def _fill(
    path: Path,
    key: SplitKey,
    rows: int,
    estimate: int,
    bound: int,
    build: Callable[[], pa.Table],
) -> pa.Table | None:
    """Under the key's lock: the file another process wrote meanwhile, or a new one; None
    when the folder cannot take it (found out before anything is decoded)."""
    try:
        return _read(path, key, rows)
    except FileNotFoundError:
        pass
    except _Damaged as damage:
        log.warning("hone: split cache file %s is damaged (%s); rebuilding it", path, damage)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # a folder put in its place: leave it, read without the cache
            _fall_back(path, key, exc)
            return None
    for stale in path.parent.glob(f"{key.stem}.*.tmp"):  # a writer killed mid-write left it
        with contextlib.suppress(OSError):
            stale.unlink()
    try:
        _check_room(path.parent, estimate)
        # Made first: a folder that takes no file (read-only, immutable) is found out
        # before the split is decoded, not after.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{key.stem}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        _fall_back(path.parent, key, exc)
        return None
    tmp = Path(name)
    try:
        table = build()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if table.num_rows != rows:  # never written: no reader would accept the file
        tmp.unlink(missing_ok=True)
        log.warning(
            "hone: %s has %d rows, its manifest says %d; not cached",
            key.shown,
            table.num_rows,
            rows,
        )
        return table
    if table.nbytes > bound:  # the estimate missed (text labels): found out only now
        tmp.unlink(missing_ok=True)
        log.warning(
            "hone: %s is %s decoded, more than the split cache holds (%s=%s)",
            key.shown,
            _size(table.nbytes),
            SIZE_ENV,
            _size(bound),
        )
        return table
    try:
        _evict(path.parent, table.nbytes, bound, key.stem)
        mapped = _write(tmp, path, key, table)
    except (OSError, pa.ArrowException) as exc:
        _fall_back(path.parent, key, exc)
        return table
    del table  # the decoded copy: from here on the writer too holds only the mapped one,
    pa.default_memory_pool().release_unused()  # and its pages go back to the system
    return mapped


def _check_room(folder: Path, estimate: int) -> None:
    """Raise ENOSPC when the disk cannot take the file even after eviction: every process
    of a job learns it before decoding, rather than one after another, each after its own
    decoding and failed write."""
    disk = os.statvfs(folder)
    free = disk.f_bavail * disk.f_frsize
    if free + _cached_bytes(folder) < estimate:
        raise OSError(
            errno.ENOSPC,
            f"{_size(free)} free on its disk, {_size(estimate)} needed",
        )


def checksum(table: pa.Table) -> str:
    """CRC-32 of every buffer of ``table`` (~1 GB/s: far cheaper than decoding the chunks
    again, and what catches bytes changed on disk since the file was written)."""
    crc = 0
    for column in table.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    crc = zlib.crc32(memoryview(buffer), crc)
    return f"{crc:08x}"


def _sum_path(path: Path) -> Path:
    """The file beside a cache file holding its checksum."""
    return path.with_name(path.name.split(".", 1)[0] + _SUM_SUFFIX)


def _read(path: Path, key: SplitKey, rows: int, check_sum: bool = True) -> pa.Table:
    """The file's table, mapped (no copy); ``FileNotFoundError`` when there is none,
    ``_Damaged`` when it fails a check."""
    # Only a plain file is opened: a FIFO put there would block the open forever, and a
    # link leads to a file the cache did not write.
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise
    except OSError as exc:  # the folder is not one, or cannot be searched
        raise _Damaged(f"cannot be looked at: {_reason(exc)}") from exc
    if not stat.S_ISREG(mode):
        raise _Damaged("it is not a plain file")
    try:
        source = pa.memory_map(str(path), "r")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _Damaged(f"cannot be mapped: {_reason(exc)}") from exc
    try:
        table = pa.ipc.open_file(source).read_all()
        table.validate()  # buffers as long as their arrays need: never a read past the end
    except (pa.ArrowException, OSError, ValueError) as exc:
        source.close()
        raise _Damaged(f"not a whole Arrow file: {exc}") from exc
    metadata = table.schema.metadata or {}
    if metadata.get(_KEY) != key.text.encode():
        source.close()
        raise _Damaged("it was written for another key")
    if metadata.get(_ROWS) != str(rows).encode() or table.num_rows != rows:
        source.close()
        raise _Damaged(f"it holds {table.num_rows} rows, not {rows}")
    if tuple(table.column_names) != key.columns:
        source.close()
        raise _Damaged(f"its columns are {table.column_names}, not {list(key.columns)}")
    if check_sum:
        try:
            recorded = _sum_path(path).read_text().strip()
        except (OSError, UnicodeDecodeError):
            recorded = ""
        if recorded != checksum(table):
            source.close()
            raise _Damaged("its bytes changed since they were written (checksum)")
    with contextlib.suppress(OSError):  # the eviction order; atime alone is not kept
        os.utime(path)  # on every mount (noatime, relatime)
    return table


def _write(tmp: Path, path: Path, key: SplitKey, table: pa.Table) -> pa.Table:
    """Write ``table`` into ``tmp``, then make it ``path`` whole (fsync, rename); the
    mapped table. ``tmp`` is gone afterwards, whatever happens."""
    metadata = {
        **(table.schema.metadata or {}),
        _KEY: key.text.encode(),
        _ROWS: str(table.num_rows).encode(),
    }
    table = table.replace_schema_metadata(metadata)
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)  # uncompressed: what makes it mappable
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data on disk before the name: never a whole-looking stub
        finally:
            os.close(fd)
        tmp.chmod(0o444)  # read-only, as blobs are: what a key names never changes
        try:
            # Mapped before the rename: a concurrent eviction cannot take it from this
            # process, and the writer shares the page cache's copy like everyone else.
            mapped = _read(tmp, key, table.num_rows, check_sum=False)
        except _Damaged as damage:
            raise OSError(f"the file just written reads back damaged: {damage}") from None
        # The checksum of what was read back (the layout every reader will see), in place
        # before the file's name is: a reader never finds a file without its sum.
        _write_atomically(_sum_path(path), checksum(mapped).encode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return mapped


def _write_atomically(path: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _cached_bytes(folder: Path) -> int:
    """The bytes of the cache files in ``folder`` (files evicted meanwhile count none)."""
    total = 0
    for entry in os.scandir(folder):
        with contextlib.suppress(OSError):
            if entry.name.endswith(_SUFFIX) and entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total


def _acquire(folder: Path, key: SplitKey) -> int:
    """The key's lock, held: an open descriptor (closing it releases the lock)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / f"{key.stem}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WorkspaceError(
                        f"waited {LOCK_WAIT_S:.0f} s for {_holder(fd)} to write the split "
                        f"cache file of {key.shown} (lock {lock}): stop that process if it "
                        f"is stuck, or set {SIZE_ENV}=0 to read without the cache"
                    ) from None
                time.sleep(_POLL_S)
        # Lock files are kept (never deleted), so a lock is always the same file: deleting
        # one could let two processes each hold "the" lock of a key.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # named in another's timeout error
    except BaseException:
        os.close(fd)
        raise
    return fd


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f"process {int(os.pread(fd, 32, 0).decode().strip())}"
    return "another process"


def _evict(folder: Path, incoming: int, bound: int, keep: str) -> None:
    """Delete the least recently used files until ``incoming`` more bytes fit in
    ``bound``; and temp files whose writer died (their key's lock is free)."""
    files: list[tuple[float, int, str]] = []
    for entry in os.scandir(folder):
        try:
            if entry.name.endswith(_SUFFIX) and entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                files.append((max(info.st_atime, info.st_mtime), info.st_size, entry.path))
            elif entry.name.endswith(".tmp") and not entry.name.startswith(f"{keep}."):
                _remove_if_orphan(folder, entry.name)
        except OSError:
            continue  # gone meanwhile, or not ours to judge
    total = sum(size for _, size, _ in files)
    for _, size, name in sorted(files):
        if total + incoming <= bound:
            break
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass  # another process evicted it
        except OSError:
            continue
        with contextlib.suppress(OSError):
            _sum_path(Path(name)).unlink(missing_ok=True)
        total -= size


def _remove_if_orphan(folder: Path, name: str) -> None:
    """Delete a temp file if no process holds its key's lock: its writer is gone."""
    lock = folder / f"{name.split('.', 1)[0]}.lock"
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        (folder / name).unlink(missing_ok=True)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a writer is at work
        (folder / name).unlink(missing_ok=True)
    finally:
        os.close(fd)


def _fall_back(where: Path, key: SplitKey, exc: BaseException) -> None:
    log.warning(
        "hone: cannot use the split cache at %s (%s); reading %s into this process's memory",
        where,
        _reason(exc),
        key.shown,
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _size(count: int) -> str:
    return f"{count / (1 << 30):.2f} GiB" if count >= 1 << 30 else f"{count / (1 << 20):.1f} MiB"
