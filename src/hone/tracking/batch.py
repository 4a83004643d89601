"""A batch: one run's journal records, grouped by what they touch in the store.

Records arrive in journal order (from a live run's memory, or read back from a segment).
A record whose shape hone cannot apply — from a damaged journal, or a journal written by a
different hone — is not applied: it is kept in ``rejected`` with the reason, so the sink can
set it aside and apply the rest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hone.tracking.entities import RunStatus
from hone.tracking.points import POINT, Points
from hone.tracking.records import Event, Malformed, MetricPoint, Record

__all__ = ["Batch", "Rejected"]

#: Points of a refused key per quarantine record.
SERIES_RECORD_POINTS = 10_000
_ENDED = frozenset(s.value for s in RunStatus if s is not RunStatus.RUNNING)


@dataclass(frozen=True)
class Rejected:
    """A record that will not be applied, and why (see ``hone.tracking.quarantine``)."""

    kind: str
    record: Any
    reason: str
    time: float | None = None


@dataclass
class Batch:
    """Records of one run's segment, in journal order, split by what they touch."""

    run_id: str
    starts: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    #: key -> (value, time of the record): the newest write wins.
    tags: dict[str, tuple[str, float]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Points] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    last_timestamp: float | None = None
    #: The time of the last event (hone's clock; metric timestamps may be anything).
    last_event_time: float | None = None

    def add(self, record: Record) -> None:
        if isinstance(record, MetricPoint):
            if not (math.isfinite(record.timestamp) and -(2**63) <= record.step < 2**63):
                self.rejected.append(
                    Rejected("metric", _point_dict(record), "timestamp is not finite")
                )
                return
            points = self.metrics.get(record.key)
            if points is None:
                points = self.metrics[record.key] = Points()
            points.append(record.step, record.value, record.timestamp)
            self.last_timestamp = record.timestamp
        elif isinstance(record, Malformed):
            self.rejected.append(Rejected("malformed", record.payload[:4096].hex(), record.reason))
        else:
            self.add_event(record)

    def add_event(self, record: Event) -> None:
        data = record.data
        reason = _shape_problem(record.kind, data)
        if reason is not None:
            time = data.get("time")
            self.rejected.append(
                Rejected(record.kind, data, reason, time if _finite_number(time) else None)
            )
            return
        time = float(data["time"])
        self.last_timestamp = time
        self.last_event_time = time
        kind = record.kind
        if kind == "start":
            self.starts.append(self._repaired_start(data, time))
        elif kind == "params":
            for key, value in data["values"].items():
                kept = self.params.setdefault(key, value)
                if kept != value:
                    self.rejected.append(
                        Rejected(
                            "params",
                            {"values": {key: value}},
                            f"param {key!r} is already {kept!r}; params are fixed once logged",
                            time,
                        )
                    )
        elif kind == "tags":
            for key, value in data["values"].items():
                if key not in self.tags or self.tags[key][1] <= time:
                    self.tags[key] = (value, time)
        elif kind == "artifact":
            self.artifacts.append(data)
        elif kind == "input":
            self.inputs.append(data)
        elif kind in ("end", "resume"):
            self.statuses.append({"kind": kind, **data})

    def _repaired_start(self, data: dict[str, Any], time: float) -> dict[str, Any]:
        """A start record whose descriptive fields (host, git state, environment, …) are
        malformed still starts its run — without them; what was dropped is set aside."""
        bad = {
            name: data[name] for name in _START_EXTRAS if not _START_EXTRAS[name](data.get(name))
        }
        if not bad:
            return data
        self.rejected.append(
            Rejected("start", bad, f"malformed start fields {sorted(bad)} dropped", time)
        )
        return {k: v for k, v in data.items() if k not in bad}

    def __len__(self) -> int:
        return (
            len(self.starts)
            + len(self.params)
            + len(self.tags)
            + len(self.artifacts)
            + len(self.inputs)
            + sum(map(len, self.metrics.values()))
            + len(self.statuses)
            + len(self.rejected)
        )

    def units(self) -> Iterator[Batch]:
        """The batch as one-record batches (a key's points together), in the order a whole
        batch is applied: how the sink finds the one record a store refuses."""
        for start in self.starts:
            yield Batch(self.run_id, starts=[start])
        for key, value in self.params.items():
            yield Batch(self.run_id, params={key: value})
        for key, tag in self.tags.items():
            yield Batch(self.run_id, tags={key: tag})
        for artifact in self.artifacts:
            yield Batch(self.run_id, artifacts=[artifact])
        for item in self.inputs:
            yield Batch(self.run_id, inputs=[item])
        for key, points in self.metrics.items():
            yield Batch(self.run_id, metrics={key: points})
        for status in self.statuses:
            yield Batch(self.run_id, statuses=[status])

    def first_point(self) -> Batch | None:
        """A batch of this one-key batch's first point alone; None for anything else."""
        if len(self.metrics) != 1 or len(self) != len(next(iter(self.metrics.values()))):
            return None
        ((key, points),) = self.metrics.items()
        return Batch(self.run_id, metrics={key: Points(points.data[: POINT.size])})

    def halves(self) -> tuple[Batch, Batch] | None:
        """A one-key batch of many points split in two; None for a single record."""
        if len(self.metrics) != 1:
            return None
        ((key, points),) = self.metrics.items()
        if len(points) < 2:
            return None
        first, second = points.halves()
        return Batch(self.run_id, metrics={key: first}), Batch(self.run_id, metrics={key: second})

    def as_rejected(self, reason: str) -> list[Rejected]:
        """Every record of a (one-record) batch, set aside for ``reason``."""
        out: list[Rejected] = []
        for start in self.starts:
            out.append(Rejected("start", start, reason, start.get("time")))
        for key, value in self.params.items():
            out.append(Rejected("params", {"values": {key: value}}, reason))
        for key, (value, time) in self.tags.items():
            out.append(Rejected("tags", {"values": {key: value}}, reason, time))
        for artifact in self.artifacts:
            out.append(Rejected("artifact", artifact, reason, artifact.get("time")))
        for item in self.inputs:
            out.append(Rejected("input", item, reason, item.get("time")))
        for key, points in self.metrics.items():
            rows = points.rows()
            # One record per 10,000 points: a refused key's whole series in a few rows.
            for at in range(0, len(rows), SERIES_RECORD_POINTS):
                part = rows[at : at + SERIES_RECORD_POINTS]
                record = {"key": key, "points": [[step, value, ts] for value, step, ts in part]}
                out.append(Rejected("metrics", record, reason, part[-1][2]))
        for status in self.statuses:
            out.append(Rejected(status["kind"], status, reason, status.get("time")))
        return out


def _point_dict(point: MetricPoint) -> dict[str, Any]:
    return {
        "key": point.key,
        "step": point.step,
        "value": point.value,
        "timestamp": point.timestamp,
    }


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _shape_problem(kind: str, data: dict[str, Any]) -> str | None:
    """Why an event cannot be applied as it stands, or None if it can."""
    if not _finite_number(data.get("time")):
        return "its time is missing or not a finite number"
    if kind == "start":
        for name in ("run_id", "experiment", "name"):
            if not _is_text(data.get(name)):
                return f"start record without a text {name}"
        return None
    if kind in ("params", "tags"):
        values = data.get("values")
        if not isinstance(values, dict) or not all(
            _is_text(k) and _is_text(v) for k, v in values.items()
        ):
            return f"{kind} record without text keys and values"
        return None
    if kind == "artifact":
        if not (_is_text(data.get("path")) and _is_text(data.get("digest"))):
            return "artifact record without a path and digest"
        size = data.get("size")
        ok = isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 2**63
        return None if ok else "artifact size is not a count"
    if kind == "input":
        if not (_is_text(data.get("version_id")) and _is_text(data.get("dataset"))):
            return "input record without a version id and dataset"
        return None if data.get("split") is None or _is_text(data["split"]) else "bad split"
    if kind == "end":
        status = data.get("status")
        return None if _is_text(status) and status in _ENDED else "end record with a bad status"
    if kind in ("resume", "attach"):
        return None
    return f"unknown record kind {kind!r} (written by a newer hone?)"


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _json_object(text: Any) -> bool:
    if not _is_text(text):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def _text_or_none(value: Any) -> bool:
    return value is None or _is_text(value)


def _flag_or_none(value: Any) -> bool:
    return value is None or isinstance(value, bool)


def _object_or_none(value: Any) -> bool:
    return value is None or _json_object(value)


#: A start record's optional fields, and what each must be to be stored.
_START_EXTRAS: dict[str, Callable[[Any], bool]] = {
    "parent_run_id": _text_or_none,
    "git_commit": _text_or_none,
    "host": _text_or_none,
    "user": _text_or_none,
    "source": _text_or_none,
    "git_dirty": _flag_or_none,
    "environment": _object_or_none,
}
