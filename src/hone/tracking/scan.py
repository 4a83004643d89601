"""Reading a journal segment back: any frame size, bounded memory, damage stepped over.

A segment is read through ``os.pread`` in windows of ``READ_WINDOW`` bytes; a frame longer
than a window is read whole (up to ``MAX_FRAME_BYTES``), so a large valid frame is never
mistaken for a torn one. Where a frame is damaged, the scanner looks for the next intact
frame and carries on from there, recording the bytes it skipped; damage with no intact frame
after it is a torn tail (a crash mid-copy). Zero bytes after the last frame are the unused
room of the file, not damage.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from hone.tracking.batch import Batch
from hone.tracking.points import POINT, Points
from hone.tracking.records import HEADER, MAX_FRAME_BYTES, Record, frame_at

__all__ = ["READ_WINDOW", "FrameScanner", "Skipped"]

READ_WINDOW = 4 << 20
#: Bytes of candidate frames a scanner may read while resynchronizing, per segment byte.
RESYNC_BUDGET = 8
#: Every event record hone writes begins so (the payload's type byte, then JSON).
_EVENT_START = b'J{"kind":'
#: The longest metric frame payload: type, packed point and a key of at most 1,000 bytes.
_MAX_METRIC = 1 + 24 + 1000
_METRIC_KEY_AT = HEADER.size + 1 + POINT.size  # a metric frame's key, from its start
_TIME = struct.Struct("<d")
_TIME_AT = 1 + 16  # a metric frame's timestamp, from its body


@dataclass(frozen=True)
class Skipped:
    """Damaged bytes stepped over in the middle of a segment."""

    offset: int
    length: int


@dataclass
class FrameScanner:
    """Yields ``(end_offset, record)`` for the intact frames of ``fd`` in [start, end)."""

    fd: int
    start: int
    end: int
    #: Non-zero bytes after the last intact frame: a record torn by a crash.
    torn_bytes: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._offset = self.start
        self._budget = RESYNC_BUDGET * (self.end - self.start) + (64 << 20)

    def frames(self) -> Iterator[tuple[int, Record]]:
        offset = self.start
        buf_start, buf = offset, b""
        while offset < self.end:
            rel = offset - buf_start
            if rel + HEADER.size > len(buf):
                buf_start, buf = offset, self._read(offset, READ_WINDOW)
                rel = 0
            if len(buf) - rel >= HEADER.size:
                length = HEADER.unpack_from(buf, rel)[0]
                if rel + HEADER.size + length > len(buf) and length <= MAX_FRAME_BYTES:
                    buf_start, buf = offset, self._read(offset, HEADER.size + length)
                    rel = 0
            found = frame_at(memoryview(buf), rel)
            if found is not None:
                frame_end, record = found
                offset = buf_start + frame_end
                yield offset, record
                continue
            resume = self._next_frame(offset)
            if resume is None:
                self.torn_bytes = self._nonzero_bytes(offset)
                return
            self.skipped.append(Skipped(offset, resume - offset))
            buf_start, buf = resume, b""
            offset = resume

    def read_into(self, batch: Batch, max_records: int) -> int:
        """Add up to ``max_records`` records from where the last call stopped to ``batch``;
        returns how many (0 at the end).

        Metric frames, nearly all of a journal, are decoded inline straight into the
        batch's columns (~4x faster than record objects); anything else — events, frames
        across a window's end, damage — takes the general path.
        """
        offset = self._offset
        count = 0
        buf_start, buf = offset, b""
        while count < max_records and offset < self.end:
            rel = offset - buf_start
            if len(buf) - rel < HEADER.size:
                buf_start, buf, rel = offset, self._read(offset, READ_WINDOW), 0
            stop, added = _fill_metrics(buf, rel, batch, max_records - count)
            count += added
            offset = buf_start + stop
            if count >= max_records or offset >= self.end:
                break
            found = frame_at(memoryview(buf), stop)
            if found is not None:
                frame_end, record = found
                batch.add(record)
                count += 1
                offset = buf_start + frame_end
                continue
            length = HEADER.unpack_from(buf, stop)[0] if len(buf) - stop >= HEADER.size else 0
            whole = stop + HEADER.size + length
            if 0 < length <= MAX_FRAME_BYTES and len(buf) < whole <= self.end - buf_start:
                # A frame across the window's end: read it whole, then decode it as usual.
                buf_start, buf = offset, self._read(offset, HEADER.size + length)
                if frame_at(memoryview(buf), 0) is not None:
                    continue
            resume = self._next_frame(offset)
            if resume is None:
                self.torn_bytes = self._nonzero_bytes(offset)
                offset = self.end
                break
            self.skipped.append(Skipped(offset, resume - offset))
            buf_start, buf, offset = resume, b"", resume
        self._offset = offset
        return count

    def _read(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, min(size, self.end - offset), offset)

    def _next_frame(self, damaged: int) -> int | None:
        """The offset of the next intact frame after ``damaged``, if any.

        Candidates are the places where a record type byte could stand. Most fail at once
        on their length field or on the bytes every record of their type begins with;
        only the rest are read whole and checked against their CRC. Reading candidates is
        bounded (``RESYNC_BUDGET`` times the segment's size), so crafted damage costs
        linear time: past the budget, the rest of the segment counts as damaged.
        """
        position = damaged + 1
        while position < self.end:
            window = self._read(position, READ_WINDOW + HEADER.size + 1)
            if not window.strip(b"\0"):
                position += max(len(window) - HEADER.size - 1, 1)
                continue
            limit = min(len(window), READ_WINDOW + HEADER.size + 1)
            for tag in self._tag_positions(window, limit):
                candidate = position + tag - HEADER.size
                if candidate <= damaged:
                    continue
                if self._budget <= 0:
                    return None
                if self._intact_at(candidate, window, tag - HEADER.size):
                    return candidate
            position += READ_WINDOW
        return None

    @staticmethod
    def _tag_positions(window: bytes, limit: int) -> list[int]:
        found: list[int] = []
        for tag in (b"M", b"J"):
            at = window.find(tag, HEADER.size, limit)
            while at != -1:
                found.append(at)
                at = window.find(tag, at + 1, limit)
        return sorted(found)

    def _intact_at(self, offset: int, window: bytes, at: int) -> bool:
        """Whether a whole, intact frame starts at ``offset`` (``window[at:]``)."""
        if at + HEADER.size + len(_EVENT_START) <= len(window):
            head = window[at : at + HEADER.size]
            start = window[at + HEADER.size : at + HEADER.size + len(_EVENT_START)]
        else:
            head = self._read(offset, HEADER.size + len(_EVENT_START))
            head, start = head[: HEADER.size], head[HEADER.size :]
        if len(head) < HEADER.size:
            return False
        length = HEADER.unpack(head)[0]
        if length == 0 or length > MAX_FRAME_BYTES or offset + HEADER.size + length > self.end:
            return False
        if start[:1] == b"M" and not _METRIC_KEY_AT - HEADER.size < length <= _MAX_METRIC:
            return False
        if start[:1] == b"J" and not _EVENT_START.startswith(start[: len(_EVENT_START)]):
            return False
        self._budget -= HEADER.size + length
        return frame_at(memoryview(self._read(offset, HEADER.size + length)), 0) is not None

    def _nonzero_bytes(self, offset: int) -> int:
        """Bytes from ``offset`` up to the last non-zero byte (the torn part)."""
        last = 0
        position = offset
        while position < self.end:
            chunk = self._read(position, READ_WINDOW)
            if not chunk:
                break
            stripped = len(chunk.rstrip(b"\0"))
            if stripped:
                last = position - offset + stripped
            position += len(chunk)
        return last


def _fill_metrics(buf: bytes, offset: int, batch: Batch, limit: int) -> tuple[int, int]:
    """Copy the run of intact metric frames at ``offset`` into ``batch``; returns where it
    stopped and how many it added. A frame's body is the packed point itself, so each point
    is one slice and one extend. Stops at anything else (left to the general path): an
    event, a damaged or cut-off frame, a timestamp that is not finite."""
    unpack_header = HEADER.unpack_from
    unpack_time = _TIME.unpack_from
    crc32 = zlib.crc32
    metrics = batch.metrics
    keys: dict[bytes, bytearray] = {}
    size = len(buf)
    added = 0
    last_ts = None
    while added < limit and offset + HEADER.size <= size:
        length, crc = unpack_header(buf, offset)
        body = offset + HEADER.size
        stop = body + length
        if stop > size or length <= _METRIC_KEY_AT - HEADER.size or buf[body] != 0x4D:
            break
        if crc32(buf[body:stop]) != crc:
            break
        (ts,) = unpack_time(buf, body + _TIME_AT)
        if ts - ts != 0.0:  # inf or NaN: the general path sets it aside
            break
        raw = buf[offset + _METRIC_KEY_AT : stop]
        data = keys.get(raw)
        if data is None:
            try:
                key = raw.decode()
            except UnicodeDecodeError:
                break
            points = metrics.get(key)
            if points is None:
                points = metrics[key] = Points()
            data = keys[raw] = points.data
        data += buf[body + 1 : body + 1 + POINT.size]
        last_ts = ts
        offset = stop
        added += 1
    if last_ts is not None:
        batch.last_timestamp = last_ts
    return offset, added
