"""The machine's split cache (data/split_cache.py): one process decodes a split, every
process maps the same copy; damaged files are rebuilt, and a cache that cannot be used
never fails a read (the size bound: test_split_cache_bound.py; fixtures: conftest.py)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import hone
import hone.data
from hone.data import split_cache
from hone.data.dataset import DatasetVersion
from hone.data.split_cache import SIZE_ENV
from hone.errors import WorkspaceError
from tests.data.split_cache_helpers import batches, cache_file, expected, same

torch = pytest.importorskip("torch")


def test_a_second_loader_reads_no_chunk_and_gives_the_same_batches(
    digits: DatasetVersion, chunk_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = batches(digits)
    assert chunk_reads and cache_file(digits, "train").is_file()
    chunk_reads.clear()
    second = batches(digits)
    assert chunk_reads == []  # mapped from the cache file: nothing read, hashed or decoded
    assert same(first, second)
    with monkeypatch.context() as off:
        off.setenv(SIZE_ENV, "0")
        assert same(batches(digits), first)  # what a loader without the cache gives
    chunk_reads.clear()
    digits.torch("train")  # the map-style dataset shares it too
    assert chunk_reads == []
    x, y = digits.to_numpy("train", raw=True, shared=True)
    want_x, want_y = expected(digits, "train")
    assert np.array_equal(x, want_x) and np.array_equal(y, want_y)  # type: ignore[arg-type]
    assert not x.flags.writeable and y is not None and not y.flags.writeable  # views


def test_every_split_and_version_has_its_own_file(digits: DatasetVersion) -> None:
    normalized = hone.data.normalize(digits)  # the same chunks, another version
    for version, split in ((digits, "train"), (digits, "test"), (digits, None)):
        version.to_numpy(split, raw=True, shared=True)
    normalized.to_numpy("train", raw=True, shared=True)
    names = {
        cache_file(digits, "train"),
        cache_file(digits, "test"),
        cache_file(digits, None),
        cache_file(normalized, "train"),
    }
    assert len(names) == 4 and all(p.is_file() for p in names)
    x, _ = normalized.to_numpy("train", shared=True)  # transforms still apply
    assert abs(float(x.mean())) < 1e-6


_CHILD = r"""
import json, sys, time
from collections.abc import Iterator
from pathlib import Path
import numpy as np
import hone.data
from hone.blobs import BlobStore

home, ref, sync, me = sys.argv[1:5]
sync = Path(sync)
chunks, decoded = set(), []
get_bytes = BlobStore.get_bytes

def slow_get_bytes(store, digest):
    if digest in chunks:
        decoded.append(digest)
        time.sleep(0.5)  # holds the key's lock long enough for the other process to wait
    return get_bytes(store, digest)

BlobStore.get_bytes = slow_get_bytes

def meet(stage):
    (sync / f"{stage}-{me}").touch()
    deadline = time.monotonic() + 60
    while len(list(sync.glob(f"{stage}-*"))) < 2:
        assert time.monotonic() < deadline, f"the other process never reached {stage}"
        time.sleep(0.005)

def mapped_kib(inode):
    shared = private = 0
    current = False
    for line in open("/proc/self/smaps"):
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):
            current = len(fields) >= 6 and fields[4] == str(inode)
        elif current and fields[0] in ("Shared_Clean:", "Shared_Dirty:"):
            shared += int(fields[1])
        elif current and fields[0] in ("Private_Clean:", "Private_Dirty:"):
            private += int(fields[1])
    return shared, private

version = hone.data.get(ref, workspace=home)
chunks.update(c.digest for c in version.manifest.chunks)
meet("start")
x, y = version.to_numpy("train", raw=True, verify=True, shared=True)
checksum = float(x.sum()) + float(y.sum())  # every page touched
meet("read")
files = sorted(p for p in (Path(home) / "cache" / "splits").glob("*.arrow"))
shared, private = mapped_kib(files[0].stat().st_ino) if len(files) == 1 else (0, 0)
meet("measured")  # neither unmaps before both have measured
print(json.dumps({
    "decoded": len(decoded), "files": [p.name for p in files], "checksum": checksum,
    "x": x.tobytes().hex()[:64], "rows": len(x), "shared_kib": shared, "private_kib": private,
    "size_kib": files[0].stat().st_size / 1024 if files else 0,
}))
"""


def test_two_processes_at_once_decode_once_and_share_one_copy(
    digits: DatasetVersion, tmp_path: Path
) -> None:
    """Two real processes start reading the same split together: one decodes (the other
    waits on the key's lock), one file results, both get the same rows, and the file's
    pages are shared between them, not private to each."""
    assert digits.home is not None
    sync = tmp_path / "sync"
    sync.mkdir()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(digits.home), digits.ref, str(sync), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out.splitlines()[-1]))
    assert sorted(r["decoded"] for r in results) == [0, 1]  # one chunk, decoded by one
    assert results[0]["files"] == results[1]["files"] == [cache_file(digits, "train").name]
    assert results[0]["checksum"] == results[1]["checksum"]
    assert results[0]["x"] == results[1]["x"]
    assert results[0]["rows"] == digits.splits["train"]
    want_x, want_y = expected(digits, "train")
    assert results[0]["checksum"] == float(want_x.sum()) + float(want_y.sum())
    if sys.platform == "linux":
        for r in results:  # the whole file resident once, in both processes' maps
            assert r["shared_kib"] >= 0.9 * r["size_kib"], r
            assert r["private_kib"] <= 8, r


def _damage(path: Path, how: str, other: Path) -> None:
    data = path.read_bytes()
    path.chmod(0o644)  # written read-only, as blobs are
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif how == "another key":
        path.write_bytes(other.read_bytes())
    elif how == "a fifo":  # opening it to read would wait for a writer forever
        path.unlink()
        os.mkfifo(path)
    elif how == "a link":  # to a whole file of the right key, but not one the cache wrote
        copy = path.with_name("elsewhere")
        path.rename(copy)
        path.symlink_to(copy)
    elif how == "bits flipped":  # bit rot: the file looks whole, 64 bytes of values differ
        middle = len(data) // 2
        path.write_bytes(
            data[:middle]
            + bytes(b ^ 0xFF for b in data[middle : middle + 64])
            + data[middle + 64 :]
        )
    elif how == "fewer rows":  # a whole Arrow file with the right key, edited by hand
        table = pa.ipc.open_file(pa.BufferReader(data)).read_all().slice(0, 10)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as out:
            out.write_table(table)


@pytest.mark.parametrize(
    "how",
    [
        "truncated",
        "empty",
        "garbage",
        "another key",
        "fewer rows",
        "bits flipped",
        "a fifo",
        "a link",
    ],
)
def test_a_damaged_file_is_rebuilt_and_the_rows_are_right(
    digits: DatasetVersion,
    chunk_reads: list[str],
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    good = batches(digits)
    digits.to_numpy("test", raw=True, shared=True)
    path = cache_file(digits, "train")
    _damage(path, how, cache_file(digits, "test"))
    chunk_reads.clear()
    with caplog.at_level(logging.WARNING, logger="hone.data"):
        rebuilt = batches(digits)
    assert same(rebuilt, good)
    assert chunk_reads  # decoded again, from the verified chunks
    assert any(
        "is damaged" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records
    )
    chunk_reads.clear()
    assert same(batches(digits), good) and chunk_reads == []  # whole again


def test_a_folder_in_the_files_place_falls_back(
    digits: DatasetVersion, caplog: pytest.LogCaptureFixture
) -> None:
    good = batches(digits)
    path = cache_file(digits, "train")
    path.unlink()
    (path / "inside").mkdir(parents=True)
    with caplog.at_level(logging.WARNING, logger="hone.data"):
        assert same(batches(digits), good)
    assert any("cannot use the split cache" in r.getMessage() for r in caplog.records)
    assert (path / "inside").is_dir()  # not deleted: it is not a file the cache wrote


def test_a_cache_folder_that_cannot_be_made_falls_back(
    digits: DatasetVersion, caplog: pytest.LogCaptureFixture
) -> None:
    assert digits.home is not None
    (digits.home / "cache").write_text("a file where the cache folder goes")
    with caplog.at_level(logging.WARNING, logger="hone.data"):
        x, y = digits.to_numpy("train", raw=True, shared=True)
    want_x, want_y = expected(digits, "train")
    assert np.array_equal(x, want_x) and np.array_equal(y, want_y)  # type: ignore[arg-type]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot use the split cache" in warnings[0]


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """``folder`` refuses new files for a while, to root too: root ignores permissions,
    so it gets the immutable attribute (chattr +i) instead."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        message = f"cannot make {folder} immutable: {made.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_cache_folder_falls_back_and_still_serves_its_files(
    digits: DatasetVersion, caplog: pytest.LogCaptureFixture
) -> None:
    digits.to_numpy("train", raw=True, shared=True)
    folder = cache_file(digits, "train").parent
    with _read_only(folder):
        with caplog.at_level(logging.WARNING, logger="hone.data"):
            digits.to_numpy("train", raw=True, shared=True)  # there: served
            assert not caplog.records
            x, _ = digits.to_numpy("test", raw=True, shared=True)  # not there: in memory
        assert (
            len(x) == digits.splits["test"]
            and "cannot use the split cache" in caplog.records[0].getMessage()
        )


def test_a_full_disk_falls_back_and_leaves_no_temp_file(
    digits: DatasetVersion, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with caplog.at_level(logging.WARNING, logger="hone.data"):
        x, _ = digits.to_numpy("train", raw=True, shared=True)
    assert np.array_equal(x, expected(digits, "train")[0])
    assert "No space left on device" in caplog.records[0].getMessage()
    assert sorted(p.suffix for p in cache_file(digits, "train").parent.iterdir()) == [".lock"]


def test_a_disk_without_room_is_found_out_before_decoding(
    digits: DatasetVersion,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    chunk_reads: list[str],
) -> None:
    """No room even after eviction: the lock is let go before the split is decoded (so
    the other ranks do not decode one after another), and it is decoded once."""
    statvfs = os.statvfs

    def full(path: Any) -> Any:
        real = statvfs(path)
        return os.statvfs_result((*real[:4], 0, *real[5:]))  # f_bavail: no free block

    monkeypatch.setattr(os, "statvfs", full)
    with caplog.at_level(logging.WARNING, logger="hone.data"):
        x, _ = digits.to_numpy("train", raw=True, shared=True)
    assert len(chunk_reads) == len(digits.manifest.chunks)
    assert np.array_equal(x, expected(digits, "train")[0])
    assert "free on its disk" in caplog.records[0].getMessage()
    assert sorted(p.suffix for p in cache_file(digits, "train").parent.iterdir()) == [".lock"]


def test_a_stuck_writer_is_waited_for_a_bounded_time(
    digits: DatasetVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(split_cache, "LOCK_WAIT_S", 0.3)
    lock = cache_file(digits, "train").with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"424242\n")
        fcntl.flock(fd, fcntl.LOCK_EX)  # another holder (flock locks are per open file)
        with pytest.raises(WorkspaceError, match=r"waited 0 s for process 424242 .*=0"):
            digits.to_numpy("train", raw=True, shared=True)
    finally:
        os.close(fd)
    x, _ = digits.to_numpy("train", raw=True, shared=True)  # the lock is free: fine
    assert len(x) == digits.splits["train"]


_KILLED_WRITER = r"""
import os, sys, time
from collections.abc import Iterator
from pathlib import Path
import hone.data

def stuck(fd):
    Path(sys.argv[3]).touch()  # the temp file is written: now the parent kills this process
    time.sleep(60)

os.fsync = stuck
hone.data.get(sys.argv[2], workspace=sys.argv[1]).to_numpy("train", raw=True, shared=True)
"""


def test_a_writer_killed_mid_write_leaves_nothing_that_is_read(
    digits: DatasetVersion, tmp_path: Path, chunk_reads: list[str]
) -> None:
    """kill -9 between writing the temp file and renaming it: the next reader finds no
    file, takes the (released) lock, removes the temp file and writes a whole one."""
    assert digits.home is not None
    flag, err = tmp_path / "writing", tmp_path / "stderr"
    with err.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, str(digits.home), digits.ref, str(flag)],
            stderr=stderr,
        )
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert child.poll() is None and time.monotonic() < deadline, err.read_text()
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    folder = cache_file(digits, "train").parent
    assert [p.suffix for p in folder.glob("*.tmp")] == [".tmp"]
    assert not cache_file(digits, "train").exists()
    x, _ = digits.to_numpy("train", raw=True, shared=True)
    assert np.array_equal(x, expected(digits, "train")[0])
    assert not list(folder.glob("*.tmp")) and cache_file(digits, "train").is_file()


def test_an_orphan_temp_file_of_another_key_is_removed_when_room_is_made(
    digits: DatasetVersion,
) -> None:
    folder = cache_file(digits, "train").parent
    folder.mkdir(parents=True)
    orphan = folder / f"{'0' * 32}.abc123.tmp"
    orphan.write_bytes(b"left by a writer that died")
    digits.to_numpy("train", raw=True, shared=True)
    assert not orphan.exists()


def test_a_version_without_a_workspace_folder_reads_without_the_cache(
    digits: DatasetVersion, chunk_reads: list[str]
) -> None:
    bare = DatasetVersion(digits.row, digits.blobs, digits.db)
    for _ in range(2):
        x, _ = bare.to_numpy("train", raw=True, shared=True)
    assert len(chunk_reads) == 2 and len(x) == digits.splits["train"]
    assert digits.home is not None and not (digits.home / "cache").exists()
