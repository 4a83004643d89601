"""Blob stores on a full disk and on a read-only one: a clear error, and nothing left behind."""

from __future__ import annotations

import io
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from hone.blobs import FsspecBlobStore, LocalBlobStore
from hone.errors import BlobError, DiskFullError
from tests.blobs.mounts import tmpfs

BIG = 3 << 20  # three times the 1 MiB disk


def test_a_full_disk_raises_disk_full_naming_the_folder_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "small", size="1m") as disk:
        store = LocalBlobStore(disk / "blobs")
        kept = store.put_bytes(b"already stored")
        puts: list[Callable[[], str]] = [
            lambda: store.put_bytes(os.urandom(BIG)),
            lambda: store.put_stream(io.BytesIO(os.urandom(BIG))),
        ]
        for put in puts:
            with pytest.raises(DiskFullError, match=re.escape(f"{disk / 'blobs'} is full")):
                put()
            assert list((disk / "blobs" / "tmp").iterdir()) == []  # no temp file
            assert list(store.digests()) == [kept]  # no partial blob
        # Nothing is left holding space: the disk takes a blob that fits, and reads back.
        digest = store.put_bytes(os.urandom(256 << 10))
        store.verify(digest)
        assert store.get_bytes(kept) == b"already stored"


def test_the_fsspec_spool_on_a_full_disk_is_disk_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tmpfs(tmp_path / "small", size="1m") as disk:
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        store = FsspecBlobStore(f"memory://hone-test-{uuid.uuid4().hex}")
        with pytest.raises(DiskFullError, match=re.escape(f"temp folder {disk}")):
            store.put_bytes(os.urandom(BIG))
        assert list(store.digests()) == [] and list(disk.iterdir()) == []


def test_a_read_only_disk_is_refused_by_the_probe_and_by_writes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", readonly=True) as disk:
        store = LocalBlobStore(disk / "blobs")
        with pytest.raises(BlobError, match="Read-only file system"):
            store.check_writable()
        with pytest.raises(BlobError, match="Read-only file system"):
            store.put_bytes(b"x")
