"""What keys, values, names and paths may be: checked when logged, for the strictest backend.

A value that one store would refuse (PostgreSQL holds no NUL character in text; neither
backend takes a lone surrogate; columns have lengths) is refused here, when the caller can
still fix it, rather than when a background thread flushes it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from numbers import Real
from pathlib import Path
from typing import Any

from hone.errors import ConflictError, ValidationError
from hone.tracking.entities import RunStatus
from hone.tracking.records import MAX_EVENT_BYTES

__all__ = [
    "MAX_ARTIFACT_PATH",
    "MAX_KEY_LENGTH",
    "MAX_VALUE_LENGTH",
    "artifact_files",
    "check_artifact_path",
    "check_end_status",
    "check_key",
    "check_mapping",
    "check_metric_value",
    "check_name",
    "check_param_conflicts",
    "check_run_id",
    "check_step",
    "check_text",
    "check_text_value",
    "check_timestamp",
    "checked_values",
    "split_for_journal",
]

MAX_KEY_LENGTH = 250
MAX_VALUE_LENGTH = 8000
MAX_ARTIFACT_PATH = 1000
MAX_ARTIFACT_BYTES = 2000
# Letters, digits and the punctuation people use to group keys ("val/acc", "lr.head").
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-./: ]+$")
_RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_MIN_STEP, _MAX_STEP = -(2**63), 2**63 - 1


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


def check_text(text: str, what: str, limit: int) -> str:
    """``text`` if every backend can store it: no NUL, valid Unicode, at most ``limit``."""
    if len(text) > limit:
        raise ValidationError(f"{what} is {len(text):,} characters; the limit is {limit:,}")
    if "\x00" in text:
        raise ValidationError(
            f"{what} contains a NUL character (at position {text.index(chr(0))}), which "
            "PostgreSQL cannot store; remove it"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{what} is not valid Unicode text: {exc.object[exc.start]!r} at position "
            f"{exc.start} is a lone surrogate (bytes that were not UTF-8?)"
        ) from None
    return text


def check_name(name: Any, kind: str) -> str:
    """Names of runs and experiments: printable text up to the key length."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{kind} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_KEY_LENGTH or not name.isprintable():
        raise ValidationError(
            f"{kind} name {name[:40]!r} must be printable and at most {MAX_KEY_LENGTH} characters"
        )
    return check_text(name, f"{kind} name {name[:40]!r}", MAX_KEY_LENGTH)


def check_run_id(run_id: Any, what: str = "run id") -> str:
    """A full run id (32 lowercase hex digits)."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise ValidationError(f"{what} must be a run id (32 hex digits), got {run_id!r}")
    return run_id


def check_mapping(values: Any, kind: str) -> Mapping[Any, Any]:
    if not isinstance(values, Mapping):
        raise ValidationError(
            f"{kind}s must be a mapping of key to value (a dict), got {type(values).__name__}"
        )
    return values


def check_metric_value(key: str, value: Any) -> float:
    """A float; NaN and ±inf are kept faithfully (a diverged loss is worth recording).
    Numbers only: numpy scalars and 0-d tensors convert, text does not."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise ValidationError(
            f"metric {key!r}: value {value!r} is not a number ({type(value).__name__}); "
            "log numbers as metrics and text as tags"
        )
    try:
        return float(value)
    except OverflowError:
        raise ValidationError(
            f"metric {key!r}: value {str(value)[:40]}… is too large for a 64-bit float"
        ) from None
    except Exception as exc:  # TypeError, ValueError, or whatever a __float__ raises
        raise ValidationError(
            f"metric {key!r}: value {_short(value)} is not a number ({exc})"
        ) from None


def check_step(key: str, step: Any) -> int:
    if isinstance(step, bool):
        raise ValidationError(f"metric {key!r}: step {step!r} is not an integer")
    if not isinstance(step, int):
        try:
            as_int = int(step)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValidationError(f"metric {key!r}: step {step!r} is not an integer") from exc
        if as_int != step:
            raise ValidationError(f"metric {key!r}: step {step!r} is not an integer")
        step = as_int
    if not _MIN_STEP <= step <= _MAX_STEP:
        raise ValidationError(f"metric {key!r}: step {step} does not fit in 64 bits")
    return int(step)


def check_timestamp(key: str, timestamp: Any) -> float:
    """A finite time in seconds since the epoch."""
    if isinstance(timestamp, (bool, str, bytes)) or not isinstance(timestamp, Real):
        raise ValidationError(
            f"metric {key!r}: timestamp {timestamp!r} is not a number of seconds since the epoch"
        )
    try:
        value = float(timestamp)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise ValidationError(f"metric {key!r}: timestamp {timestamp!r} is not finite")
    return value


def check_text_value(key: str, value: Any, kind: str) -> str:
    """Params and tags are stored as text; floats keep their repr so 0.1 stays 0.1."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = _to_text(value)
        except Exception as exc:  # a user object whose __str__ fails
            raise ValidationError(
                f"{kind} {key!r}: cannot turn the {type(value).__name__} value into text: {exc}"
            ) from None
    return check_text(text, f"{kind} {key!r} value", MAX_VALUE_LENGTH)


def check_artifact_path(path: Any) -> str:
    """A relative POSIX path of named parts (no ``.``, ``..`` or empty part), storable on
    every backend: at most 1,000 characters and 2,000 bytes of UTF-8 (PostgreSQL indexes
    at most ~2.7 kB a row)."""
    if not isinstance(path, str) or not path:
        raise ValidationError(f"artifact path must be a non-empty string, got {path!r}")
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValidationError(
            f"artifact path {path[:80]!r} must be relative, of named parts (no '', '.', '..')"
        )
    check_text(path, f"artifact path {path[:80]!r}", MAX_ARTIFACT_PATH)
    size = len(path.encode())
    if size > MAX_ARTIFACT_BYTES:
        raise ValidationError(
            f"artifact path {path[:80]!r} is {size:,} bytes of UTF-8; the limit is "
            f"{MAX_ARTIFACT_BYTES:,}"
        )
    return path


def check_end_status(status: Any) -> RunStatus:
    """The status a run may end with: finished, failed or killed."""
    ended = [s.value for s in RunStatus if s is not RunStatus.RUNNING]
    try:
        final = RunStatus(status)
    except (ValueError, TypeError):
        final = None
    if final is None or final is RunStatus.RUNNING:
        raise ValidationError(f"a run ends as one of {', '.join(ended)}, not {status!r}")
    return final


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _to_text(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return str(value)


def checked_values(values: Any, kind: str) -> dict[str, str]:
    """Params or tags as the journal takes them: valid keys, values as text."""
    check_mapping(values, kind)
    return {check_key(k, kind): check_text_value(k, v, kind) for k, v in values.items()}


def split_for_journal(values: dict[str, str]) -> list[dict[str, str]]:
    """Key/value pairs in parts whose records stay well under the frame bound."""
    parts: list[dict[str, str]] = []
    part: dict[str, str] = {}
    size = 0
    budget = MAX_EVENT_BYTES // 2
    for key, value in values.items():
        # JSON escapes a character in at most 6 bytes.
        cost = 6 * (len(key) + len(value)) + 8
        if part and size + cost > budget:
            parts.append(part)
            part, size = {}, 0
        part[key] = value
        size += cost
    if part or not parts:
        parts.append(part)
    return parts


def check_param_conflicts(run_id: str, old: Mapping[str, str], new: Mapping[str, str]) -> None:
    """Params are fixed once logged: the same value again is fine, another is refused."""
    for key, text in new.items():
        previous = old.get(key)
        if previous is not None and previous != text:
            raise ConflictError(
                f"param {key!r} of run {run_id} is already {previous!r}; params are fixed "
                f"once logged (got {text!r}): log a tag or metric for values that change"
            )


def artifact_files(path: Any, name: str | None) -> list[tuple[Path, str]]:
    """What ``log_artifact(path, name)`` stores: each file with its artifact path, every
    path checked before any byte is stored (a folder gives every file under it)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValidationError(f"log_artifact takes a file or folder path, got {path!r}")
    source = Path(path)
    if not source.exists():
        raise ValidationError(f"cannot log artifact {str(source)!r}: no such file or folder")
    if not (source.is_dir() or source.is_file()):  # a FIFO or a device never ends
        raise ValidationError(
            f"cannot log artifact {str(source)!r}: not a regular file or a folder"
        )
    base = check_artifact_path(name if name is not None else source.name)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file())
        pairs = [(p, f"{base}/{p.relative_to(source).as_posix()}") for p in files]
    else:
        pairs = [(source, base)]
    for _, artifact_path in pairs:
        check_artifact_path(artifact_path)
    return pairs
