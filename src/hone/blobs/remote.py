"""Blobs on any fsspec filesystem (s3://, gs://, memory://, …).

Object stores make a single put atomic, so a blob is uploaded to its final key only after
its digest is known: the bytes are first spooled to a local temp file while hashing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import fsspec

from hone.blobs.base import CHUNK_SIZE, BlobStore, check_digest
from hone.errors import BlobError, NotFoundError

__all__ = ["FsspecBlobStore"]


class FsspecBlobStore(BlobStore):
    """Blobs under a prefix of an fsspec filesystem."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url.rstrip("/")
        try:
            fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise BlobError(f"cannot open blob store {url!r}: {exc}") from exc
        self._fs = fs
        self._root = root.rstrip("/")

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._root}/sha256/{digest[:2]}/{digest}"

    def put_stream(self, stream: BinaryIO) -> str:
        import hashlib

        hasher = hashlib.sha256()
        with tempfile.TemporaryFile() as spool:
            for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
                hasher.update(chunk)
                spool.write(chunk)
            digest = hasher.hexdigest()
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
