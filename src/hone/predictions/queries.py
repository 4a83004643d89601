"""Reading the application data back: recent predictions, and how a model does in service
(volume, latency percentiles, label coverage, live accuracy) per version and per hour or
day."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select

from hone.errors import NotFoundError, ValidationError
from hone.registry import get_version
from hone.registry.refs import ModelRef
from hone.store.database import Database
from hone.store.schema import predictions

__all__ = [
    "BUCKETS",
    "PredictionRecord",
    "Stats",
    "count_predictions",
    "list_predictions",
    "prediction_stats",
]

BUCKETS = {"hour": 3600.0, "day": 86400.0}
#: Rows read per round trip when stats read a model's whole history.
_READ_ROWS = 50_000


@dataclass(frozen=True)
class PredictionRecord:
    request_id: str
    model: str
    version: int
    at: float
    prediction: Any
    label: Any  # None until feedback gives one
    labeled_at: float | None
    latency_ms: float
    input: bytes | None  # raw, in the version's signature dtype; None when kept as a blob
    input_digest: str | None
    probabilities: list[float | None] | None

    def to_dict(self, *, with_input: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "model": self.model,
            "version": self.version,
            "at": self.at,
            "prediction": self.prediction,
            "label": self.label,
            "labeled_at": self.labeled_at,
            "latency_ms": self.latency_ms,
            "probabilities": self.probabilities,
            "input_digest": self.input_digest,
        }
        if with_input:
            out["input"] = None if self.input is None else self.input.hex()
        return out


def _record(row: Any) -> PredictionRecord:
    probabilities = None
    if row.probabilities is not None:
        values = np.frombuffer(row.probabilities, np.float32)
        # Not a number (a row recorded before servers refused such answers): null in JSON.
        probabilities = [v if np.isfinite(v) else None for v in values.tolist()]
    return PredictionRecord(
        request_id=row.request_id,
        model=row.model,
        version=int(row.version),
        at=float(row.at),
        prediction=json.loads(row.prediction),
        label=None if row.label is None else json.loads(row.label),
        labeled_at=row.labeled_at,
        latency_ms=float(row.latency_ms),
        input=None if row.input is None else bytes(row.input),
        input_digest=row.input_digest,
        probabilities=probabilities,
    )


def _where(
    model: str,
    since: float | None,
    labeled: bool | None,
    version: int | None,
) -> Any:
    clauses = [predictions.c.model == model]
    if since is not None:
        clauses.append(predictions.c.at >= since)
    if labeled is True:
        clauses.append(predictions.c.label.is_not(None))
    elif labeled is False:
        clauses.append(predictions.c.label.is_(None))
    if version is not None:
        clauses.append(predictions.c.version == version)
    return and_(*clauses)


def list_predictions(
    db: Database,
    model: str,
    *,
    since: float | None = None,
    labeled: bool | None = None,
    version: int | None = None,
    limit: int = 100,
) -> list[PredictionRecord]:
    """The newest predictions of ``model`` first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 1_000_000:
        raise ValidationError(f"limit {limit!r}: give a number from 1 to 1,000,000")
    query = (
        select(predictions)
        .where(_where(model, since, labeled, version))
        .order_by(predictions.c.at.desc(), predictions.c.request_id.desc())
        .limit(limit)
    )
    with db.read() as conn:
        return [_record(row) for row in conn.execute(query)]


def count_predictions(db: Database, model: str, *, labeled: bool | None = None) -> int:
    with db.read() as conn:
        count = conn.execute(
            select(func.count()).where(_where(model, None, labeled, None))
        ).scalar_one()
    return int(count)


@dataclass
class Stats:
    """How a model did over some predictions (a version, an hour, everything)."""

    predictions: int = 0
    labeled: int = 0
    correct: int = 0  # classification: predictions equal to their label
    abs_error: float = 0.0  # regression: sum of |prediction - label|
    latencies: list[np.ndarray] = field(default_factory=list, repr=False)

    def add(self, chunk: _Chunk, mask: np.ndarray | None) -> None:
        def part(a: np.ndarray) -> np.ndarray:
            return a if mask is None else a[mask]

        latency = part(chunk.latency)
        self.predictions += len(latency)
        self.labeled += int(part(chunk.labeled).sum())
        self.correct += int(part(chunk.correct).sum())
        self.abs_error += float(part(chunk.abs_error).sum())
        self.latencies.append(latency)

    def to_dict(self, regression: bool) -> dict[str, Any]:
        lat = np.concatenate(self.latencies) if self.latencies else np.zeros(0)
        p50 = p90 = p99 = None
        if len(lat):
            p50, p90, p99 = (float(v) for v in np.percentile(lat, [50, 90, 99]))
        out: dict[str, Any] = {
            "predictions": self.predictions,
            "labeled": self.labeled,
            "label_coverage": self.labeled / self.predictions if self.predictions else None,
            "latency_ms": {"p50": p50, "p90": p90, "p99": p99},
        }
        if regression:
            out["live_mae"] = self.abs_error / self.labeled if self.labeled else None
        else:
            out["live_accuracy"] = self.correct / self.labeled if self.labeled else None
        return out


@dataclass(frozen=True)
class _Chunk:
    version: np.ndarray
    at: np.ndarray
    latency: np.ndarray
    labeled: np.ndarray
    correct: np.ndarray
    abs_error: np.ndarray

    @classmethod
    def of(cls, rows: list[Any]) -> _Chunk:
        labeled = np.array([row.label is not None for row in rows], bool)
        # Both are canonical JSON: equal texts are equal values.
        correct = np.array([row.label == row.prediction for row in rows], bool)
        abs_error = np.zeros(len(rows))
        for i in np.flatnonzero(labeled):
            pred, label = json.loads(rows[i].prediction), json.loads(rows[i].label)
            if _numeric(pred) and _numeric(label):
                abs_error[i] = abs(float(pred) - float(label))
        return cls(
            version=np.array([row.version for row in rows], np.int64),
            at=np.array([row.at for row in rows], np.float64),
            latency=np.array([row.latency_ms for row in rows], np.float64),
            labeled=labeled,
            correct=correct,
            abs_error=abs_error,
        )


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _chunks(db: Database, model: str, since: float | None) -> Iterator[list[Any]]:
    cols = (
        predictions.c.version,
        predictions.c.at,
        predictions.c.latency_ms,
        predictions.c.prediction,
        predictions.c.label,
        predictions.c.request_id,
    )
    last: tuple[float, str] | None = None
    while True:
        where = _where(model, since, None, None)
        if last is not None:
            where = and_(
                where,
                (predictions.c.at > last[0])
                | and_(predictions.c.at == last[0], predictions.c.request_id > last[1]),
            )
        query = (
            select(*cols)
            .where(where)
            .order_by(predictions.c.at, predictions.c.request_id)
            .limit(_READ_ROWS)
        )
        with db.read() as conn:
            rows = list(conn.execute(query).all())
        if not rows:
            return
        yield rows
        last = (float(rows[-1].at), rows[-1].request_id)
        if len(rows) < _READ_ROWS:
            return


def _regression(db: Database, model: str, versions: list[int]) -> bool:
    for version in versions:
        try:
            signature = get_version(db, ModelRef(model, version=version)).signature
        except NotFoundError:
            continue
        return signature.get("classes") is None
    return False


def prediction_stats(
    db: Database, model: str, *, by: str | None = "hour", since: float | None = None
) -> dict[str, Any]:
    """Volume, latency percentiles, label coverage and live accuracy (live MAE for a
    regression model) of ``model``'s predictions: overall, per version and per ``by``
    (hour or day; None: no time buckets)."""
    if by is not None and by not in BUCKETS:
        raise ValidationError(f"stats by {by!r}: give hour or day")
    width = BUCKETS[by] if by is not None else None
    overall = Stats()
    versions: dict[int, Stats] = {}
    buckets: dict[tuple[float, int], Stats] = {}
    first, last = math.inf, -math.inf
    for rows in _chunks(db, model, since):
        chunk = _Chunk.of(rows)
        overall.add(chunk, None)
        first, last = min(first, float(chunk.at[0])), max(last, float(chunk.at[-1]))
        for version in np.unique(chunk.version).tolist():
            versions.setdefault(version, Stats()).add(chunk, chunk.version == version)
        if width is not None:
            starts = np.floor(chunk.at / width) * width
            keys = np.stack([starts, chunk.version.astype(np.float64)], axis=1)
            for start, version in np.unique(keys, axis=0).tolist():
                mask = (starts == start) & (chunk.version == version)
                buckets.setdefault((start, int(version)), Stats()).add(chunk, mask)
    regression = _regression(db, model, sorted(versions, reverse=True))
    result: dict[str, Any] = {
        "model": model,
        **overall.to_dict(regression),
        "first": first if overall.predictions else None,
        "last": last if overall.predictions else None,
        "versions": [{"version": v, **versions[v].to_dict(regression)} for v in sorted(versions)],
    }
    if width is not None:
        result["by"] = by
        result["buckets"] = [
            {"start": start, "version": v, **buckets[(start, v)].to_dict(regression)}
            for start, v in sorted(buckets)
        ]
    return result
