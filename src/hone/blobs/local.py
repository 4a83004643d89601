"""Blobs in a local folder: ``sha256/ab/<digest>``, written via temp file, fsync, rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from hone.blobs.base import CHUNK_SIZE, BlobStore, check_digest, write_error
from hone.errors import BlobError, NotFoundError

__all__ = ["LocalBlobStore"]


class LocalBlobStore(BlobStore):
    """A folder of immutable blobs; folders are created on first write, not before."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.url = self.root.resolve().as_uri()

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "sha256" / digest[:2] / digest

    def check_writable(self) -> None:
        # The folder may not exist yet (it is made on first write): probe the nearest
        # folder that does, with a file that is gone again when the probe ends.
        folder = self.root.absolute()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise BlobError(f"the blob store at {self.root} is under {folder}, which is a file")
        try:
            fd, name = tempfile.mkstemp(dir=folder, prefix=".hone-probe-")
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise write_error(exc, self.root) from exc

    def put_stream(self, stream: BinaryIO, digest: str | None = None) -> str:
        tmp_dir = self.root / "tmp"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        except OSError as exc:
            raise write_error(exc, self.root) from exc
        tmp = Path(tmp_name)
        try:
            hasher = hashlib.sha256() if digest is None else None
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
                    if hasher is not None:
                        hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if hasher is not None:
                digest = hasher.hexdigest()
            assert digest is not None
            final = self._path(digest)
            if final.exists():
                return digest
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            return digest
        except OSError as exc:
            raise write_error(exc, self.root) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def open(self, digest: str) -> BinaryIO:
        try:
            return self._path(digest).open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"no blob {digest} in {self.url}") from exc

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise NotFoundError(f"no blob {digest} in {self.url}") from exc

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(digest).unlink()

    def digests(self) -> Iterator[str]:
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for prefix in sorted(base.iterdir()):
            for path in sorted(prefix.iterdir()):
                yield path.name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
