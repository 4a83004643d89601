"""Journal records: what a run's write path says, framed so a torn tail is detectable.

Frame: ``<u32 payload length><u32 crc32(payload)><payload>``. A payload is either a metric
point (``b"M"`` + value, step, timestamp + key) — the hot path, packed by hand — or any other
event as ``b"J"`` + JSON. Readers stop at the first frame that is short or fails its CRC.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Event",
    "MetricPoint",
    "decode_frames",
    "encode_event",
    "encode_metric",
]

_HEADER = struct.Struct("<II")
_METRIC = struct.Struct("<dqd")
_METRIC_TAG = b"M"
_EVENT_TAG = b"J"


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


def encode_metric(key_bytes: bytes, value: float, step: int, timestamp: float) -> bytes:
    payload = _METRIC_TAG + _METRIC.pack(value, step, timestamp) + key_bytes
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def encode_event(kind: str, data: dict[str, Any]) -> bytes:
    payload = _EVENT_TAG + json.dumps({"kind": kind, **data}, separators=(",", ":")).encode()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_frames(
    buffer: bytes | memoryview, start: int = 0
) -> Iterator[tuple[int, MetricPoint | Event]]:
    """Yield ``(end_offset, record)`` for each whole, intact frame from ``start``.

    Stops silently at a short or corrupt frame: the caller sees how far it got from the
    last end offset, and treats the rest as a torn tail.
    """
    view = memoryview(buffer)
    size = len(view)
    offset = start
    header = _HEADER.size
    unpack_header = _HEADER.unpack_from
    unpack_metric = _METRIC.unpack_from
    crc32 = zlib.crc32
    while offset + header <= size:
        length, crc = unpack_header(view, offset)
        body = offset + header
        end = body + length
        if length == 0 or end > size:
            return
        payload = view[body:end]
        if crc32(payload) != crc:
            return
        tag = payload[:1].tobytes()
        record: MetricPoint | Event
        if tag == _METRIC_TAG:
            value, step, ts = unpack_metric(payload, 1)
            record = MetricPoint(bytes(payload[1 + _METRIC.size :]).decode(), value, step, ts)
        elif tag == _EVENT_TAG:
            data = json.loads(bytes(payload[1:]))
            record = Event(data.pop("kind"), data)
        else:
            return
        offset = end
        yield offset, record
