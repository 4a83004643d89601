"""Identifiers and digests: meaningful on any machine, never tied to a local path."""

from __future__ import annotations

import hashlib
import re
import uuid

__all__ = ["DIGEST_RE", "is_digest", "new_id", "sha256_bytes"]

DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def new_id() -> str:
    """A new random 32-hex-character id (runs, experiments, journal segments)."""
    return uuid.uuid4().hex


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def is_digest(value: str) -> bool:
    """Whether ``value`` is a full lowercase hex sha256 digest."""
    return bool(DIGEST_RE.match(value))
