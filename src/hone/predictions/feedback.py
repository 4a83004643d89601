"""Labels for past predictions, given by request id.

Giving the label a prediction already has changes nothing; a different one is recorded as a
correction (the prediction's row holds the newest label; ``prediction_feedback`` keeps every
one, with the one it replaced). A label must be one of the model version's classes (for a
regression model: a finite number); text that spells a class ("3" for the class 3, as a CSV
holds it) is taken as that class.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from hone.errors import NotFoundError, ValidationError
from hone.predictions.records import json_value
from hone.registry import get_version
from hone.registry.refs import ModelRef
from hone.registry.versions import who as default_who
from hone.store.database import Database
from hone.store.schema import prediction_feedback, predictions

__all__ = [
    "MAX_LABELS",
    "Feedback",
    "FeedbackItem",
    "canonical_label",
    "give_feedback",
    "give_feedback_many",
]

#: Labels one request may carry (POST /v1/feedback, the UI's POST /api/feedback).
MAX_LABELS = 10_000
#: Request ids are hone's 32-hex-character ids.
_MAX_ID = 32


@dataclass(frozen=True)
class Feedback:
    request_id: str
    label: Any  # the class it was taken as
    outcome: str  # "recorded" (first label), "unchanged" (the same again) or "corrected"
    previous: Any = None
    model: str = ""
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "label": self.label,
            "outcome": self.outcome,
            "previous": self.previous,
            "model": self.model,
            "version": self.version,
        }


@dataclass(frozen=True)
class FeedbackItem:
    request_id: object
    label: object
    where: str = ""  # e.g. "line 7", for messages about a file


def canonical_label(label: object, classes: Sequence[Any] | None, model_ref: str) -> Any:
    """The class ``label`` names among ``classes`` (None: a regression model's number)."""
    if isinstance(label, bool) or label is None or isinstance(label, (list, dict)):
        raise ValidationError(f"label {_shown(label)} is not a class of {model_ref}")
    if classes is None:
        value = _number(label)
        if value is None:
            raise ValidationError(
                f"label {_shown(label)}: {model_ref} is a regression model; give a finite number"
            )
        return value
    for cls in classes:
        if _same(cls, label):
            return cls
    shown = ", ".join(map(repr, list(classes)[:20])) + (" ..." if len(classes) > 20 else "")
    raise ValidationError(f"label {_shown(label)} is not one of {model_ref}'s classes: {shown}")


def _shown(label: object) -> str:
    text = repr(label)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(label: object) -> float | None:
    try:
        value = float(label)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _same(cls: Any, label: object) -> bool:
    if isinstance(label, str):
        return label.strip() == str(cls)
    if isinstance(cls, str):
        return False
    if isinstance(label, float) and not label.is_integer():
        return bool(cls == label)
    return bool(cls == label) and type(cls) is not bool


def _check_id(request_id: object, where: str) -> str:
    if not isinstance(request_id, str) or not request_id or len(request_id) > _MAX_ID:
        raise ValidationError(f"{where}request id {_shown(request_id)}: not a request id hone gave")
    return request_id


class _Classes:
    """The classes of each model version, read once. A deleted version's predictions take
    the labels of the model's newest version (the same data's classes, as a rule)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: dict[tuple[str, int], tuple[Any, ...] | None] = {}

    def of(self, model: str, version: int) -> tuple[Any, ...] | None:
        key = (model, version)
        if key not in self._known:
            try:
                signature = get_version(self.db, ModelRef(model, version=version)).signature
            except NotFoundError:
                try:
                    signature = get_version(self.db, ModelRef(model)).signature
                except NotFoundError:
                    raise ValidationError(
                        f"{model}@{version} was deleted and {model} has no version left to "
                        "say which labels are classes"
                    ) from None
            classes = signature.get("classes")
            self._known[key] = tuple(classes) if classes is not None else None
        return self._known[key]


def give_feedback(
    db: Database, request_id: object, label: object, *, source: str = "api", who: str | None = None
) -> Feedback:
    """Record ``label`` as the truth for the prediction ``request_id``."""
    (result,) = give_feedback_many(db, [FeedbackItem(request_id, label)], source=source, who=who)
    return result


def give_feedback_many(
    db: Database,
    items: Sequence[FeedbackItem],
    *,
    source: str = "api",
    who: str | None = None,
) -> list[Feedback]:
    """Record many labels in one transaction: all of them, or (on the first unknown request
    id or label that is not a class) none, with an error naming the item."""
    by = who or default_who()
    classes = _Classes(db)
    now = time.time()
    results: list[Feedback] = []
    with db.write() as conn:
        for item in items:
            where = f"{item.where}: " if item.where else ""
            request_id = _check_id(item.request_id, where)
            results.append(_give(conn, classes, request_id, item.label, where, now, by, source))
    return results


def _give(
    conn: Connection,
    classes: _Classes,
    request_id: str,
    label: object,
    where: str,
    now: float,
    by: str,
    source: str,
) -> Feedback:
    row = conn.execute(
        select(predictions.c.model, predictions.c.version, predictions.c.label).where(
            predictions.c.request_id == request_id
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"{where}no prediction has request id {request_id!r}")
    model, version = row.model, int(row.version)
    try:
        value = canonical_label(label, classes.of(model, version), f"{model}@{version}")
    except ValidationError as exc:
        raise ValidationError(f"{where}{exc}") from None
    text = json_value(value)
    previous = None if row.label is None else json.loads(row.label)
    if row.label == text:
        return Feedback(request_id, value, "unchanged", previous, model, version)
    conn.execute(
        update(predictions)
        .where(predictions.c.request_id == request_id)
        .values(label=text, labeled_at=now)
    )
    conn.execute(
        insert(prediction_feedback).values(
            request_id=request_id, label=text, previous=row.label, at=now, who=by, source=source
        )
    )
    outcome = "recorded" if row.label is None else "corrected"
    return Feedback(request_id, value, outcome, previous, model, version)
