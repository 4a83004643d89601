"""Which blob URLs hone accepts, checked before anything is opened or written.

Blobs need a filesystem that can be written and where one put of a whole object is atomic:
a local folder, or an object store. fsspec knows many more protocols (``ftp``, ``http``,
``zip``, ``github``, …) that are read-only, not atomic, or not storage at all; they are
refused by name rather than failing later, mid-write, with a network error.
"""

from __future__ import annotations

import importlib.util
from urllib.parse import ParseResult, urlparse

from hone.errors import ValidationError

__all__ = ["LOCAL_SCHEMES", "REMOTE_SCHEMES", "parse_blob_url", "supported_schemes"]

LOCAL_SCHEMES = ("", "file")
# fsspec protocol -> the package that implements it (None: fsspec itself).
REMOTE_SCHEMES: dict[str, str | None] = {
    "memory": None,
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
}


_LISTED = ("memory", "s3", "gs", "az")  # the others are aliases of these


def supported_schemes() -> str:
    """What works, for messages: ``a folder path, file:///PATH, memory://, s3:// (needs …``."""
    parts = ["a folder path", "file:///PATH"]
    for scheme in _LISTED:
        package = REMOTE_SCHEMES[scheme]
        if package is None or _installed(package):
            parts.append(f"{scheme}://")
        else:
            parts.append(f"{scheme}:// (needs `pip install {package}`)")
    return ", ".join(parts)


def parse_blob_url(url: str) -> ParseResult:
    """Parse ``url``, or raise ``ValidationError`` saying what is wrong and what works."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(f"blob URL {url!r} is empty; use {supported_schemes()}")
    try:
        url.encode("utf-8")
        parsed = urlparse(url)
    except (UnicodeError, ValueError) as exc:
        raise ValidationError(f"blob URL {url!a} is not a valid URL: {exc}") from exc
    scheme = parsed.scheme.lower()
    if scheme == "file":
        if parsed.netloc not in ("", "localhost") or not parsed.path:
            raise ValidationError(
                f"blob URL {url!r} names no local folder (a file URL is file:///ABSOLUTE/PATH, "
                "with three slashes)"
            )
        return parsed
    if scheme in LOCAL_SCHEMES:
        return parsed
    if scheme not in REMOTE_SCHEMES:
        raise ValidationError(
            f"blob URL {url!r}: {scheme}:// cannot hold blobs (hone needs a writable store "
            f"with atomic puts); use {supported_schemes()}"
        )
    package = REMOTE_SCHEMES[scheme]
    if package is not None and not _installed(package):
        raise ValidationError(
            f"blob URL {url!r}: {scheme}:// needs the {package} package; run "
            f"`pip install {package}`"
        )
    return parsed


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None
