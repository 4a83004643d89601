"""Journal records: what a run's write path says, framed so damage is detectable.

Frame: ``<u32 payload length><u32 crc32(payload)><payload>``. A payload is either a metric
point (``b"M"`` + value, step, timestamp + key) — the hot path, packed by hand — or any other
event as ``b"J"`` + JSON. Writers keep event payloads under ``MAX_EVENT_BYTES`` (large
params/tags calls are split into several events); readers accept any frame up to
``MAX_FRAME_BYTES``, so a journal written by another hone still replays.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hone.errors import ValidationError
from hone.tracking.points import POINT

__all__ = [
    "HEADER",
    "MAX_EVENT_BYTES",
    "MAX_FRAME_BYTES",
    "Event",
    "Malformed",
    "MetricPoint",
    "Record",
    "decode_frames",
    "decode_payload",
    "encode_event",
    "encode_metric",
    "frame_at",
]

HEADER = struct.Struct("<II")
_METRIC = POINT  # a metric frame's body is a packed point
_METRIC_TAG = b"M"
_EVENT_TAG = b"J"
_TAGS = frozenset((ord(_METRIC_TAG), ord(_EVENT_TAG)))
#: Writers split events to stay below this; far below the read window.
MAX_EVENT_BYTES = 1 << 20
#: The largest frame a reader accepts; a longer length field is damage, not data.
MAX_FRAME_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class MetricPoint:
    key: str
    value: float
    step: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class Event:
    """Every non-metric record: ``kind`` says which (start, params, tags, artifact, end)."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Malformed:
    """An intact frame (its CRC holds) whose payload hone cannot read: set aside, not applied."""

    payload: bytes
    reason: str


Record = MetricPoint | Event | Malformed


def encode_metric(key_bytes: bytes, value: float, step: int, timestamp: float) -> bytes:
    payload = _METRIC_TAG + _METRIC.pack(value, step, timestamp) + key_bytes
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def encode_event(
    kind: str,
    data: dict[str, Any],
    *,
    limit: int = MAX_EVENT_BYTES,
    dumps: Callable[[dict[str, Any]], bytes] | None = None,
) -> bytes:
    """An event frame. JSON escapes every non-ASCII character, so any text is framed.
    ``limit`` may be raised up to ``MAX_FRAME_BYTES`` for a record that cannot be split (one
    large model input); ``dumps`` may write the JSON faster (orjson, on a server's path)."""
    body = {"kind": kind, **data}
    text = dumps(body) if dumps is not None else json.dumps(body, separators=(",", ":")).encode()
    payload = _EVENT_TAG + text
    if len(payload) > min(limit, MAX_FRAME_BYTES):
        raise ValidationError(
            f"one {kind} record would be {len(payload):,} bytes; the limit is "
            f"{min(limit, MAX_FRAME_BYTES):,} (log fewer or shorter values per call)"
        )
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


_key_cache: dict[bytes, str] = {}


def decode_payload(payload: bytes | memoryview) -> Record:
    """The record in one intact payload (a ``Malformed`` if hone cannot read it)."""
    tag = payload[0] if len(payload) else -1
    if tag == 0x4D:  # b"M"
        if len(payload) <= 1 + _METRIC.size:
            return Malformed(bytes(payload), "metric record without a key")
        value, step, ts = _METRIC.unpack_from(payload, 1)
        raw = bytes(payload[1 + _METRIC.size :])
        key = _key_cache.get(raw)
        if key is None:
            try:
                key = raw.decode()
            except UnicodeDecodeError:
                return Malformed(bytes(payload), "metric key is not UTF-8")
            if len(_key_cache) < 100_000:
                _key_cache[raw] = key
        return MetricPoint(key, value, step, ts)
    if tag == 0x4A:  # b"J"
        try:
            data = json.loads(bytes(payload[1:]))
        except (ValueError, RecursionError) as exc:
            return Malformed(bytes(payload), f"event is not JSON: {exc}")
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            return Malformed(bytes(payload), "event has no kind")
        return Event(data.pop("kind"), data)
    return Malformed(bytes(payload), f"unknown record type {tag}")


def frame_at(view: memoryview, offset: int) -> tuple[int, Record] | None:
    """The frame starting at ``offset`` if it is whole and intact: (its end, record)."""
    if offset + HEADER.size > len(view):
        return None
    length, crc = HEADER.unpack_from(view, offset)
    end = offset + HEADER.size + length
    if length == 0 or length > MAX_FRAME_BYTES or end > len(view):
        return None
    payload = view[offset + HEADER.size : end]
    if payload[0] not in _TAGS or zlib.crc32(payload) != crc:
        return None
    return end, decode_payload(payload)


def decode_frames(buffer: bytes | memoryview, start: int = 0) -> Iterator[tuple[int, Record]]:
    """Yield ``(end_offset, record)`` for each intact frame of an in-memory buffer from
    ``start``, stopping at the first frame that is short or damaged (tests, benchmarks;
    journals are read with ``hone.tracking.scan``, which also resynchronizes)."""
    view = memoryview(buffer)
    offset = start
    while (found := frame_at(view, offset)) is not None:
        offset, record = found
        yield offset, record
