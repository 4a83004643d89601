"""The blob store contract: immutable bytes addressed by their sha256 digest."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from hone.errors import BlobError, DiskFullError, NotFoundError, ValidationError
from hone.ids import is_digest

__all__ = ["CHUNK_SIZE", "BlobStore", "check_digest", "write_error"]

CHUNK_SIZE = 1 << 20
_FULL = {errno.ENOSPC, errno.EDQUOT}


def write_error(exc: OSError, where: object) -> BlobError | DiskFullError:
    """What an OS error while writing blobs at ``where`` means: a full disk, or a failure."""
    if exc.errno in _FULL:
        return DiskFullError(
            f"the disk holding {where} is full ({exc.strerror}); free space there and retry"
        )
    return BlobError(f"cannot write to the blob store at {where}: {exc.strerror or exc}")


def check_digest(digest: str) -> str:
    if not is_digest(digest):
        raise ValidationError(f"{digest!r} is not a sha256 digest (64 lowercase hex digits)")
    return digest


class BlobStore(ABC):
    """Content-addressed, immutable bytes.

    Contract for implementations:
    - ``put_*`` returns the sha256 hex digest of the bytes; putting bytes that are already
      stored writes nothing new (dedup) and returns the same digest.
    - A blob becomes visible only whole: readers never see a partly written blob, and a
      writer that dies leaves at most a temporary file that ``get`` never returns.
    - Bytes are streamed in chunks; no method needs a whole large blob in memory except
      ``get_bytes``.
    - ``open`` raises ``NotFoundError`` for an unknown digest; a stored blob whose bytes do
      not match its digest raises ``BlobError`` when read through ``get_bytes`` or
      ``verify``.
    - Safe for concurrent writers in several processes: two writers of the same bytes both
      succeed and one copy remains.
    - A full disk raises ``DiskFullError`` naming where; any other write failure
      ``BlobError``. Neither leaves a partial blob or a temporary file behind.
    - Constructing a store writes nothing; ``check_writable`` is the explicit probe (what
      ``hone init`` runs), and leaves nothing behind either.
    Implementations provide the primitives; conveniences are written once here.
    """

    url: str

    @abstractmethod
    def check_writable(self) -> None:
        """Raise ``BlobError`` (or ``DiskFullError``) unless blobs can be written here."""

    @abstractmethod
    def put_stream(self, stream: BinaryIO, digest: str | None = None) -> str:
        """Store everything read from ``stream``; return its digest. A caller that hashed
        the very bytes already passes ``digest``, and they are not hashed again."""

    @abstractmethod
    def open(self, digest: str) -> BinaryIO:
        """A binary file object reading the blob's bytes."""

    @abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abstractmethod
    def size(self, digest: str) -> int: ...

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove a blob (for explicit garbage collection only)."""

    @abstractmethod
    def digests(self) -> Iterator[str]:
        """Every stored digest, in no particular order."""

    # Conveniences, written once for every backend.

    def put_bytes(self, data: bytes, *, repair: bool = False) -> str:
        """Store ``data``; return its digest. With ``repair``, a stored copy is checked
        first and replaced when its bytes no longer match (for blobs that must be readable
        once this returns, such as a checkpoint: its old copy may have been damaged)."""
        # In memory already: hash first, and write nothing (no temp file, no fsync) when
        # the blob exists, as a run's unchanged git diff does at every start.
        digest = hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            if not repair:
                return digest
            try:
                self.verify(digest)
                return digest
            except NotFoundError:
                pass  # deleted meanwhile: written below
            except BlobError:
                self.delete(digest)
        return self.put_stream(io.BytesIO(data), digest)

    def put_file(self, path: str | os.PathLike[str]) -> str:
        try:
            with Path(path).open("rb") as fh:
                return self.put_stream(fh)
        except FileNotFoundError as exc:
            raise NotFoundError(f"no file at {path}") from exc
        except IsADirectoryError as exc:
            raise ValidationError(f"{path} is a directory, not a file") from exc
        except PermissionError as exc:
            raise ValidationError(f"cannot read {path}: permission denied") from exc

    def get_bytes(self, digest: str) -> bytes:
        with self.open(digest) as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != digest:
            raise BlobError(f"blob {digest} is corrupt: its bytes do not match its digest")
        return data

    def verify(self, digest: str) -> None:
        """Raise ``BlobError`` if the stored bytes do not hash to ``digest``."""
        hasher = hashlib.sha256()
        with self.open(digest) as fh:
            for chunk in iter(lambda: fh.read(CHUNK_SIZE), b""):
                hasher.update(chunk)
        if hasher.hexdigest() != digest:
            raise BlobError(f"blob {digest} is corrupt: its bytes do not match its digest")

    def copy_to(self, digest: str, path: str | os.PathLike[str]) -> None:
        """Write the blob to a local file, streamed."""
        with self.open(digest) as src, Path(path).open("wb") as dst:
            for chunk in iter(lambda: src.read(CHUNK_SIZE), b""):
                dst.write(chunk)
