"""Content-addressed blob stores; a URL picks the backend."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from hone.blobs.base import BlobStore
from hone.blobs.local import LocalBlobStore
from hone.blobs.remote import FsspecBlobStore

__all__ = ["BlobStore", "FsspecBlobStore", "LocalBlobStore", "open_blob_store"]


def open_blob_store(url: str) -> BlobStore:
    """``file://`` (or a plain path) gives a local folder; any other scheme goes to fsspec."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalBlobStore(unquote(parsed.path) if parsed.scheme else url)
    return FsspecBlobStore(url)
