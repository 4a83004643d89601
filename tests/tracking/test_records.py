"""Journal framing: intact records decode, a torn or corrupt tail stops the reader."""

from __future__ import annotations

import math

from hone.tracking.records import Event, MetricPoint, decode_frames, encode_event, encode_metric


def _stream() -> bytes:
    return b"".join(
        [
            encode_event("start", {"run_id": "r", "time": 1.0}),
            encode_metric(b"loss", 0.5, 0, 2.0),
            encode_metric("ключ/ü".encode(), math.inf, -3, 3.0),
            encode_event("end", {"status": "finished", "time": 4.0}),
        ]
    )


def test_round_trip() -> None:
    records = [r for _, r in decode_frames(_stream())]
    assert records[0] == Event("start", {"run_id": "r", "time": 1.0})
    assert records[1] == MetricPoint("loss", 0.5, 0, 2.0)
    assert records[2] == MetricPoint("ключ/ü", math.inf, -3, 3.0)
    assert records[3].kind == "end"  # type: ignore[union-attr]


def test_every_truncation_keeps_the_intact_prefix() -> None:
    data = _stream()
    ends = [end for end, _ in decode_frames(data)]
    for cut in range(len(data)):
        decoded = list(decode_frames(data[:cut]))
        assert len(decoded) == sum(1 for end in ends if end <= cut)


def test_a_corrupt_byte_stops_the_reader_at_that_record() -> None:
    data = bytearray(_stream())
    ends = [end for end, _ in decode_frames(bytes(data))]
    data[ends[1] + 12] ^= 0xFF  # inside the third record's payload
    assert len(list(decode_frames(bytes(data)))) == 2


def test_nan_survives_the_journal() -> None:
    ((_, record),) = decode_frames(encode_metric(b"x", math.nan, 1, 1.0))
    assert isinstance(record, MetricPoint) and math.isnan(record.value)
