"""One contract suite for every blob store backend."""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hone.blobs import (
    BlobStore,
    FsspecBlobStore,
    LocalBlobStore,
    open_blob_store,
    supported_schemes,
)
from hone.blobs.schemes import REMOTE_SCHEMES
from hone.errors import BlobError, NotFoundError, ValidationError
from hone.ids import sha256_bytes


@pytest.fixture(params=["local", "fsspec-memory", "fsspec-file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
    elif request.param == "fsspec-memory":
        yield FsspecBlobStore(f"memory://hone-test-{uuid.uuid4().hex}")
    else:
        yield FsspecBlobStore(f"file://{tmp_path / 'fsblobs'}")


def test_put_returns_the_sha256_and_reads_back(store: BlobStore) -> None:
    digest = store.put_bytes(b"hello")
    assert digest == sha256_bytes(b"hello")
    assert store.exists(digest) and store.size(digest) == 5
    assert store.get_bytes(digest) == b"hello"
    assert list(store.digests()) == [digest]


def test_same_bytes_are_stored_once(store: BlobStore) -> None:
    assert store.put_bytes(b"x" * 10) == store.put_bytes(b"x" * 10)
    assert len(list(store.digests())) == 1


def test_large_blobs_stream(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(5 * (1 << 20) + 7)
    source.write_bytes(data)
    digest = store.put_file(source)
    assert digest == sha256_bytes(data)
    store.copy_to(digest, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data
    store.verify(digest)


def test_unknown_and_malformed_digests(store: BlobStore) -> None:
    with pytest.raises(NotFoundError):
        store.open("0" * 64)
    with pytest.raises(ValidationError, match="not a sha256 digest"):
        store.open("../../etc/passwd")
    assert not store.exists("0" * 64)


def test_delete(store: BlobStore) -> None:
    digest = store.put_bytes(b"gone")
    store.delete(digest)
    assert not store.exists(digest)
    store.delete(digest)  # deleting twice is harmless


def test_missing_source_file(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no file"):
        store.put_file(tmp_path / "nope")
    with pytest.raises(ValidationError, match="is a directory"):
        store.put_file(tmp_path)


def test_concurrent_writers_of_the_same_bytes(store: BlobStore) -> None:
    data = os.urandom(1 << 16)
    digests: list[str] = []
    threads = [
        threading.Thread(target=lambda: digests.append(store.put_stream(io.BytesIO(data))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(digests) == {sha256_bytes(data)}
    assert store.get_bytes(digests[0]) == data


def test_local_store_detects_corruption_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put_bytes(b"precious")
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
    path = tmp_path / "blobs" / "sha256" / digest[:2] / digest
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(BlobError, match="corrupt"):
        store.get_bytes(digest)
    with pytest.raises(BlobError, match="corrupt"):
        store.verify(digest)


def test_constructing_a_local_store_creates_nothing(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path / "later")
    assert not (tmp_path / "later").exists()


def test_urls_pick_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(tmp_path.as_uri()), LocalBlobStore)
    assert isinstance(open_blob_store(str(tmp_path)), LocalBlobStore)
    assert isinstance(open_blob_store("memory://x"), FsspecBlobStore)
    local = open_blob_store(f"file://localhost{tmp_path}")
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/blobs", "ftp:// cannot hold blobs"),
        ("http://example.com/blobs", "http:// cannot hold blobs"),
        ("nosuchscheme://bucket", "nosuchscheme:// cannot hold blobs"),
        ("zip://archive.zip", "zip:// cannot hold blobs"),
        ("file://relative/blobs", "names no local folder"),
        ("file://", "names no local folder"),
        ("http://[::1/blobs", "not a valid URL"),
        ("  ", "is empty"),
    ],
)
def test_urls_hone_cannot_use_are_refused_with_what_works(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        open_blob_store(url)
    if "cannot hold" in message:
        assert "file:///PATH, memory://, s3://" in str(caught.value)


def test_a_scheme_whose_package_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(REMOTE_SCHEMES, "s3", "hone_test_not_installed")
    with pytest.raises(ValidationError, match="pip install hone_test_not_installed"):
        open_blob_store("s3://bucket/blobs")
    assert "s3:// (needs `pip install hone_test_not_installed`)" in supported_schemes()


def test_a_filesystem_that_fails_to_open_is_a_blob_error() -> None:
    # Some fsspec filesystems connect while being constructed; port 1 refuses at once.
    with pytest.raises(BlobError, match=re.escape("cannot open blob store 'ftp://127.0.0.1:1")):
        FsspecBlobStore("ftp://127.0.0.1:1/x")


def test_check_writable_probes_and_leaves_nothing(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path / "later" / "blobs").check_writable()
    assert list(tmp_path.iterdir()) == []  # the folder is still made on first write only
    memory = FsspecBlobStore(f"memory://hone-test-{uuid.uuid4().hex}")
    memory.check_writable()
    assert list(memory.digests()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(BlobError, match="which is a file"):
        LocalBlobStore(tmp_path / "file" / "blobs").check_writable()


def test_putting_stored_bytes_again_writes_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put_bytes(b"diff")
    path = tmp_path / "blobs" / "sha256" / digest[:2] / digest
    before = path.stat().st_mtime_ns
    (tmp_path / "blobs" / "tmp").rmdir()
    assert store.put_bytes(b"diff") == digest
    assert path.stat().st_mtime_ns == before
    assert not (tmp_path / "blobs" / "tmp").exists()  # no temp file was even started


def test_a_bare_memory_url_keeps_its_scheme() -> None:
    # "memory://".rstrip("/") is "memory:", which fsspec takes for a local folder.
    store = open_blob_store("memory://")
    assert store.url == "memory://"
    digest = store.put_bytes(b"in memory")
    assert store.get_bytes(digest) == b"in memory"
    store.delete(digest)


def test_a_digest_the_caller_computed_is_used_as_given(store: BlobStore) -> None:
    data = b"hashed once by the caller"
    digest = hashlib.sha256(data).hexdigest()
    assert store.put_stream(io.BytesIO(data), digest) == digest
    assert store.get_bytes(digest) == data
    assert store.put_bytes(data) == digest  # and put_bytes, which hashes, agrees
