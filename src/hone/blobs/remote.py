"""Blobs on any fsspec filesystem (s3://, gs://, memory://, …).

Object stores make a single put atomic, so a blob is uploaded to its final key only after
its digest is known: the bytes are first spooled to a local temp file while hashing.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import fsspec

from hone.blobs.base import CHUNK_SIZE, BlobStore, check_digest, write_error
from hone.errors import BlobError, NotFoundError

__all__ = ["FsspecBlobStore"]


class FsspecBlobStore(BlobStore):
    """Blobs under a prefix of an fsspec filesystem."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        scheme, sep, rest = url.partition("://")
        self.url = f"{scheme}{sep}{rest.rstrip('/')}"  # memory:// keeps its slashes
        try:
            fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        except Exception as exc:  # each filesystem package raises its own kinds
            raise BlobError(f"cannot open blob store {url!r}: {_first_line(exc)}") from exc
        self._fs = fs
        self._root = root.rstrip("/")

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._root}/sha256/{digest[:2]}/{digest}"

    def check_writable(self) -> None:
        probe = f"{self._root}/tmp/probe-{uuid.uuid4().hex}"
        try:
            self._fs.pipe_file(probe, b"")
            self._fs.rm(probe)
        except OSError as exc:
            raise write_error(exc, self.url) from exc
        except Exception as exc:  # credentials, network, …: whatever the package raises
            raise BlobError(
                f"cannot write to the blob store at {self.url}: {_first_line(exc)}"
            ) from exc

    def put_stream(self, stream: BinaryIO, digest: str | None = None) -> str:
        hasher = hashlib.sha256() if digest is None else None
        with tempfile.TemporaryFile() as spool:
            try:
                for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
                    if hasher is not None:
                        hasher.update(chunk)
                    spool.write(chunk)
                spool.flush()
            except OSError as exc:  # the local spool, not the remote store, ran out
                raise write_error(exc, f"the local temp folder {tempfile.gettempdir()}") from exc
            if hasher is not None:
                digest = hasher.hexdigest()
            assert digest is not None
            key = self._key(digest)
            try:
                if self._fs.exists(key):
                    return digest
                spool.seek(0)
                self._fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
                with self._fs.open(key, "wb") as out:
                    shutil.copyfileobj(spool, out, CHUNK_SIZE)
            except OSError as exc:
                raise BlobError(f"cannot write blob {digest} to {self.url}: {exc}") from exc
        return digest

    def open(self, digest: str) -> BinaryIO:
        try:
            return cast(BinaryIO, self._fs.open(self._key(digest), "rb"))
        except FileNotFoundError as exc:
            raise NotFoundError(f"no blob {digest} in {self.url}") from exc

    def exists(self, digest: str) -> bool:
        return bool(self._fs.exists(self._key(digest)))

    def size(self, digest: str) -> int:
        try:
            return int(self._fs.size(self._key(digest)))
        except FileNotFoundError as exc:
            raise NotFoundError(f"no blob {digest} in {self.url}") from exc

    def delete(self, digest: str) -> None:
        key = self._key(digest)
        if self._fs.exists(key):
            self._fs.rm(key)

    def digests(self) -> Iterator[str]:
        base = f"{self._root}/sha256"
        if not self._fs.exists(base):
            return
        for path in sorted(self._fs.find(base)):
            name = str(path).rsplit("/", 1)[-1]
            if len(name) == 64:
                yield name


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
