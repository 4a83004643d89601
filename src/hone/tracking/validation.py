"""What a metric, param or tag key and value may be; checked when logged, not when flushed."""

from __future__ import annotations

import math
import re
from numbers import Real
from typing import Any

from hone.errors import ValidationError

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_VALUE_LENGTH",
    "check_key",
    "check_metric_value",
    "check_name",
    "check_step",
    "check_text_value",
]

MAX_KEY_LENGTH = 250
MAX_VALUE_LENGTH = 8000
# Letters, digits and the punctuation people use to group keys ("val/acc", "lr.head").
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-./: ]+$")


def check_key(key: Any, kind: str) -> str:
    """Return ``key`` if it is a valid metric/param/tag key, else raise ValidationError."""
    if not isinstance(key, str):
        raise ValidationError(f"{kind} key must be a string, got {type(key).__name__}")
    if not key or key != key.strip():
        raise ValidationError(f"{kind} key {key!r} is empty or has surrounding whitespace")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"{kind} key {key[:40]!r}… is {len(key)} characters; the limit is {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.match(key):
        bad = sorted({c for c in key if not _KEY_RE.match(c)})
        raise ValidationError(
            f"{kind} key {key!r} has characters hone does not allow: {''.join(bad)!r}; "
            "use letters, digits, spaces and _ - . / :"
        )
    return key


def check_name(name: Any, kind: str) -> str:
    """Names of runs and experiments: any printable text up to the key length."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{kind} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_KEY_LENGTH or not name.isprintable():
        raise ValidationError(
            f"{kind} name {name[:40]!r} must be printable and at most {MAX_KEY_LENGTH} characters"
        )
    return name


def check_metric_value(key: str, value: Any) -> float:
    """A float; NaN and ±inf are kept faithfully (a diverged loss is worth recording)."""
    if isinstance(value, bool) or not isinstance(value, (Real, float, int)):
        try:
            return float(value)  # numpy scalars, 0-d tensors
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"metric {key!r}: value {value!r} is not a number") from exc
    return float(value)


def check_step(key: str, step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        try:
            as_int = int(step)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"metric {key!r}: step {step!r} is not an integer") from exc
        if as_int != step:
            raise ValidationError(f"metric {key!r}: step {step!r} is not an integer")
        step = as_int
    if not -(2**63) <= step < 2**63:
        raise ValidationError(f"metric {key!r}: step {step} does not fit in 64 bits")
    return int(step)


def check_text_value(key: str, value: Any, kind: str) -> str:
    """Params and tags are stored as text; floats keep their repr so 0.1 stays 0.1."""
    text = value if isinstance(value, str) else _to_text(value)
    if len(text) > MAX_VALUE_LENGTH:
        raise ValidationError(
            f"{kind} {key!r}: value is {len(text)} characters; the limit is {MAX_VALUE_LENGTH}"
        )
    return text


def _to_text(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return str(value)
