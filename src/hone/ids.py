"""Identifiers and digests: meaningful on any machine, never tied to a local path."""

from __future__ import annotations

import hashlib
import re
import uuid

__all__ = ["DIGEST_RE", "NAME_RE", "check_slug", "is_digest", "new_id", "sha256_bytes"]

DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
#: Names that stand in references and file-like places (datasets, studies): safe anywhere.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


def new_id() -> str:
    """A new random 32-hex-character id (runs, experiments, journal segments)."""
    return uuid.uuid4().hex


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def is_digest(value: str) -> bool:
    """Whether ``value`` is a full lowercase hex sha256 digest."""
    return bool(DIGEST_RE.match(value))


def check_slug(name: object, kind: str) -> str:
    """``name`` if it is a name of ``NAME_RE`` (whole: no trailing newline); else the
    ValidationError naming ``kind`` ("dataset", "study")."""
    from hone.errors import ValidationError

    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 104 else repr(name)[:100] + "..."
        raise ValidationError(
            f"{kind} name {shown}: use letters, digits, _ . - (at most 100, starting with a "
            "letter or digit)"
        )
    return name
