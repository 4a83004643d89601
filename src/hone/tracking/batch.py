"""A batch: one run's journal records, grouped by what they touch in the store.

Records arrive in journal order (from a live run's memory, or read back from a segment).
A record whose shape hone cannot apply — from a damaged journal, or a journal written by a
different hone — is not applied: it is kept in ``rejected`` with the reason, so the sink can
set it aside and apply the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hone.tracking.entities import RunStatus
from hone.tracking.points import Points
from hone.tracking.records import Event, Malformed, MetricPoint, Record

__all__ = ["Batch", "Rejected"]

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
                Rejected(record.kind, data, reason, time if _is_number(time) else None)
            )
            return
        time = float(data["time"])
        self.last_timestamp = time
        kind = record.kind
        if kind == "start":
            self.starts.append(data)
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
            for number, step, ts in points.rows():
                point = {"key": key, "step": step, "value": number, "timestamp": ts}
                out.append(Rejected("metric", point, reason, ts))
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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _shape_problem(kind: str, data: dict[str, Any]) -> str | None:
    """Why an event cannot be applied as it stands, or None if it can."""
    time = data.get("time")
    if not isinstance(time, (int, float)) or isinstance(time, bool) or not math.isfinite(time):
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
        return None if isinstance(size, int) and size >= 0 else "artifact size is not a count"
    if kind == "input":
        if not (_is_text(data.get("version_id")) and _is_text(data.get("dataset"))):
            return "input record without a version id and dataset"
        return None if data.get("split") is None or _is_text(data["split"]) else "bad split"
    if kind == "end":
        return None if data.get("status") in _ENDED else "end record with an unknown status"
    if kind in ("resume", "attach"):
        return None
    return f"unknown record kind {kind!r} (written by a newer hone?)"
