"""``/api`` for application data: what served models answered (volume, latency, coverage,
live accuracy per version over time), the labeling queue, and labels given in the browser,
recorded exactly as ``POST /v1/feedback`` records them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from hone.errors import UserError, ValidationError
from hone.models import manage
from hone.models.workspace import Opened
from hone.predictions import FeedbackItem, give_feedback_many
from hone.predictions.feedback import MAX_LABELS
from hone.predictions.harvest import count_new_labels
from hone.predictions.queries import (
    PredictionRecord,
    count_predictions,
    list_predictions,
    prediction_stats,
)
from hone.registry.refs import check_model_name
from hone.registry.versions import ModelVersion, require_model
from hone.server.api_models import version_number
from hone.server.images import as_picture, data_url, picture_shape
from hone.server.responses import Refused

__all__ = ["Label", "predictions_router"]

MAX_QUEUE = 200
#: Values of a tabular input the queue shows; the rest are counted.
SHOWN_VALUES = 64


class Label(BaseModel):
    # As POST /v1/feedback: these two fields and nothing else, the request id as text.
    model_config = ConfigDict(extra="forbid", strict=True)

    request_id: str = Field(description="The id a prediction was answered with.")
    label: Any = Field(description="The true label: one of the model's classes.")


def predictions_router(ws: Opened) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["predictions"])
    db = ws.db
    where = ws.workspace

    @router.get("/predictions", summary="Every model with how many predictions it answered")
    def models() -> list[dict[str, Any]]:
        out = []
        for m in manage.models(workspace=where):
            total = count_predictions(db, m.name)
            labeled = count_predictions(db, m.name, labeled=True) if total else 0
            out.append({"model": m.name, "predictions": total, "labeled": labeled})
        return out

    def known(model: str) -> str:
        check_model_name(model)
        with db.read() as conn:
            require_model(conn, db, model)
        return model

    @router.get("/predictions/{model}/stats", summary="Volume, latency, live accuracy")
    def stats(
        model: str,
        by: str = Query(default="hour", description="hour or day"),
        since: float | None = Query(default=None, description="Seconds since the epoch."),
    ) -> dict[str, Any]:
        if since is not None and not math.isfinite(since):
            raise ValidationError(f"since {since!r}: give seconds since the epoch")
        found = prediction_stats(db, known(model), by=by, since=since)
        return {**found, "new_labels": count_new_labels(db, model)}

    @router.get("/predictions/{model}/queue", summary="Unlabeled predictions, newest first")
    def queue(
        model: str,
        limit: int = Query(default=20, ge=1, le=MAX_QUEUE),
        version: str | None = Query(default=None, description="Only this version's."),
    ) -> dict[str, Any]:
        number = None if version is None else version_number(version, "version")
        waiting = list_predictions(db, known(model), labeled=False, version=number, limit=limit)
        described: dict[int, ModelVersion | None] = {}
        items = []
        for record in waiting:
            if record.version not in described:
                described[record.version] = _version_or_none(model, record.version, ws)
            items.append(_queue_item(record, described[record.version], ws))
        return {
            "model": model,
            "items": items,
            "unlabeled": count_predictions(db, model, labeled=False),
            "new_labels": count_new_labels(db, model),
        }

    @router.post("/feedback", summary="Labels for past predictions (as POST /v1/feedback)")
    def feedback(body: Label | list[Label]) -> dict[str, Any]:
        entries = body if isinstance(body, list) else [body]
        # The statuses POST /v1/feedback answers with: 422 for what is wrong with the labels,
        # 413 for too many of them, 404 for an unknown request id.
        if not entries:
            raise Refused(422, 'an empty list: send {"request_id": "...", "label": ...}')
        if len(entries) > MAX_LABELS:
            raise Refused(413, f"{len(entries):,} labels in one request; at most {MAX_LABELS:,}")
        items = [
            FeedbackItem(e.request_id, e.label, f"item {i}" if isinstance(body, list) else "")
            for i, e in enumerate(entries)
        ]
        try:
            results = give_feedback_many(db, items, source="ui")
        except UserError as exc:
            raise Refused(422, str(exc)) from None
        if isinstance(body, list):
            return {"feedback": [r.to_dict() for r in results]}
        return results[0].to_dict()

    return router


def _version_or_none(model: str, version: int, ws: Opened) -> ModelVersion | None:
    """The version that answered, or None once it was deleted (its predictions remain)."""
    from hone.errors import NotFoundError

    try:
        return manage.get(f"{model}@{version}", workspace=ws.workspace)
    except NotFoundError:
        return None


def _queue_item(
    record: PredictionRecord, version: ModelVersion | None, ws: Opened
) -> dict[str, Any]:
    signature = version.signature if version is not None else {}
    inputs = (signature.get("inputs") or [{}])[0]
    dims = list(inputs.get("shape") or [None])[1:]
    # A dimension the signature leaves open (None) cannot say how to read the bytes.
    shape = [int(d) for d in dims] if all(isinstance(d, int) for d in dims) else []
    dtype = str(inputs.get("dtype", "float32"))
    names = [str(n) for n in signature.get("feature_names") or []]
    raw = record.input
    if raw is None and record.input_digest is not None and ws.blobs.exists(record.input_digest):
        raw = ws.blobs.get_bytes(record.input_digest)
    values: np.ndarray | None = None
    if raw is not None and shape:
        try:
            values = np.frombuffer(raw, dtype=np.dtype(dtype))
        except (TypeError, ValueError):
            values = None
        if values is not None and values.size != int(np.prod(shape)):
            values = None
    picture = None
    if values is not None and picture_shape(shape, names) is not None:
        pixels = as_picture(values, shape, names)
        picture = None if pixels is None else data_url(pixels)
    return {
        **record.to_dict(),
        "classes": signature.get("classes"),
        "picture": picture,
        "values": None if values is None else values[:SHOWN_VALUES].tolist(),
        "names": names[:SHOWN_VALUES],
        "value_count": None if values is None else int(values.size),
    }
