"""Content-addressed blob stores; a URL picks the backend."""

from __future__ import annotations

from urllib.parse import unquote

from hone.blobs.base import BlobStore
from hone.blobs.local import LocalBlobStore
from hone.blobs.remote import FsspecBlobStore
from hone.blobs.schemes import parse_blob_url, supported_schemes

__all__ = [
    "BlobStore",
    "FsspecBlobStore",
    "LocalBlobStore",
    "open_blob_store",
    "supported_schemes",
]


def open_blob_store(url: str) -> BlobStore:
    """``file://`` (or a plain path) gives a local folder; object stores go to fsspec.

    Raises ``ValidationError`` for a URL hone cannot use (``schemes.py`` lists what works).
    Opening writes nothing; ``BlobStore.check_writable`` is the explicit probe.
    """
    parsed = parse_blob_url(url)
    if parsed.scheme.lower() == "file":
        return LocalBlobStore(unquote(parsed.path))
    if not parsed.scheme:
        return LocalBlobStore(url)
    return FsspecBlobStore(url)
