"""One key's metric points, packed exactly as the journal packs them: 24 bytes a point.

A metric frame's body is ``struct.pack("<dqd", value, step, timestamp)``. A live run queues
those same 24 bytes in memory (one ``bytearray.extend`` on the hot path, no objects per
point), a journal read back copies them straight out of its frames, and the store gets
them as rows unpacked in C (``iter_unpack``), in the order its statement binds them:
(value, step, timestamp). A tuple per point would take ~150 bytes and a Python call.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

__all__ = ["POINT", "PointRow", "Points"]

#: value, step, timestamp: the body of a metric frame, and a queued point.
POINT = struct.Struct("<dqd")
#: A point as the store binds it: (value, step, timestamp), NaN as None.
PointRow = tuple[float | None, int, float]
_SIZE = POINT.size
_DTYPE = np.dtype([("value", "<f8"), ("step", "<i8"), ("timestamp", "<f8")])
#: Below this many points plain Python beats NumPy's per-call cost.
_SMALL = 64


class Points:
    """A key's points as packed bytes."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray | None = None) -> None:
        self.data = bytearray() if data is None else bytearray(data)

    def __len__(self) -> int:
        return len(self.data) // _SIZE

    def append(self, step: int, value: float, timestamp: float) -> None:
        self.data += POINT.pack(value, step, timestamp)

    def rows(self, start: int = 0, stop: int | None = None) -> list[PointRow]:
        """Points [start, stop) as store rows, NaN as None (SQLite would store NaN as
        NULL by itself; PostgreSQL would keep a NaN, which compares above every number)."""
        end = len(self.data) if stop is None else stop * _SIZE
        view = memoryview(self.data)[start * _SIZE : end]
        rows: list[PointRow] = list(POINT.iter_unpack(view))
        if self._has_nan(view):
            return [(None if v != v else v, s, t) for v, s, t in rows]
        return rows

    def __iter__(self) -> Iterator[PointRow]:
        return iter(self.rows())

    def newest(self) -> PointRow:
        """The point with the highest (step, timestamp); among equals the last logged."""
        if len(self) <= _SMALL:
            best: tuple[float, int, float] | None = None
            for point in POINT.iter_unpack(self.data):
                if best is None or (point[1], point[2]) >= (best[1], best[2]):
                    best = point
            assert best is not None, "no points"
            value, step, timestamp = best
        else:
            points = np.frombuffer(self.data, dtype=_DTYPE)
            steps = points["step"]
            at_top = np.flatnonzero(steps == steps.max())
            times = points["timestamp"][at_top]
            best_index = int(at_top[np.flatnonzero(times == times.max())[-1]])
            value, step, timestamp = points[best_index].item()
        return (None if value != value else value), int(step), float(timestamp)

    def take(self) -> Points:
        """The points, leaving this empty (callers hold the queue's lock)."""
        taken = Points(self.data)
        self.data.clear()
        return taken

    def halves(self) -> tuple[Points, Points]:
        middle = (len(self) // 2) * _SIZE
        return Points(self.data[:middle]), Points(self.data[middle:])

    @staticmethod
    def _has_nan(view: memoryview) -> bool:
        if len(view) <= _SMALL * _SIZE:
            return any(v != v for v, _, _ in POINT.iter_unpack(view))
        return bool(np.isnan(np.frombuffer(view, dtype=_DTYPE)["value"]).any())
