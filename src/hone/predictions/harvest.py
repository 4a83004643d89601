"""Harvest: labeled predictions become a new dataset version.

The new version is the base (the champion's training version) plus every labeled prediction
of the model that the base does not hold yet (not harvested into it or any version it
descends from), appended as rows from arrays whose sample ids are minted from their request
ids (``prediction_harvests`` links each request id to the version, sample id and split).
The freshest share of those rows, by when they were predicted, is held out as the ``fresh``
split, for evaluating champion and challenger on data neither trained on; the rest join
``train``.

Preprocessing, ``auto`` by default: the new rows are raw features, and the base's fitted
transform (normalize) is *kept* — it stays in the manifest and applies to them when they are
read — so the challenger sees the feature scaling the champion was trained and judged with,
and the two differ by their data alone. Unless production has drifted so far that the kept
scaling would feed the network values it cannot learn from (more than ``FAR_SHARE`` of the
new rows have over ``FAR_VALUES`` of their values beyond ``FAR_Z`` fitted standard
deviations: pixels that were always dark and now are bright): then it is *re-fitted* on
the new train split (appended to the base's own parent, normalized again by the same
method). ``keep`` and ``refit`` force either; the harvest says which it did and why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import and_, exists, select

from hone.blobs import BlobStore
from hone.data.dataset import DatasetVersion, apply_transforms
from hone.data.derive import append_arrays, normalize
from hone.data.versions import get_row
from hone.errors import NotFoundError, ValidationError
from hone.registry import get_version
from hone.registry.refs import ModelRef
from hone.store.database import Database
from hone.store.schema import prediction_harvests, predictions

__all__ = [
    "FRESH_SPLIT",
    "Harvest",
    "ancestry",
    "count_harvestable",
    "count_new_labels",
    "fresh_rows",
    "harvest",
    "unlink_harvest",
]

FRESH_SPLIT = "fresh"
TRAIN_SPLIT = "train"
PREPROCESSING = ("auto", "keep", "refit")
#: auto re-fits when more than FAR_SHARE of the new rows are far: more than FAR_VALUES of
#: their values beyond FAR_Z fitted standard deviations. Most of them: a few garbage rows are
#: outliers, not a drift, and a fit on them would squash every real row.
FAR_Z = 10.0
FAR_VALUES = 0.05
FAR_SHARE = 0.5
#: Request ids per query when rows are read back or links written.
_CHUNK = 900


@dataclass(frozen=True)
class Harvest:
    model: str
    base: DatasetVersion  # what the new rows were added to
    version: DatasetVersion  # the new version
    rows: int
    splits: dict[str, int]  # new rows per split
    preprocessing: str  # "kept" or "refitted"
    why: str
    request_ids: list[str] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base": self.base.ref,
            "version": self.version.ref,
            "version_id": self.version.id,
            "rows": self.rows,
            "splits": self.splits,
            "preprocessing": self.preprocessing,
            "why": self.why,
        }


def ancestry(db: Database, version_id: str) -> set[str]:
    """``version_id`` and every version it descends from."""
    seen: set[str] = set()
    todo = [version_id]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        row = get_row(db, current)
        if row is not None:
            todo.extend(row.parents)
    return seen


def _new_labeled(model: str, held: set[str]) -> Any:
    taken = exists().where(
        and_(
            prediction_harvests.c.request_id == predictions.c.request_id,
            prediction_harvests.c.dataset_version.in_(sorted(held)),
        )
    )
    return and_(predictions.c.model == model, predictions.c.label.is_not(None), ~taken)


def count_new_labels(db: Database, model: str) -> int:
    """Labeled predictions of ``model`` that no harvest has taken yet: what a loop run is
    triggered by. (A harvest itself takes every labeled prediction its base lacks, so rows
    a losing challenger was trained on still reach the next one.)"""
    from sqlalchemy import func

    taken = exists().where(prediction_harvests.c.request_id == predictions.c.request_id)
    where = and_(predictions.c.model == model, predictions.c.label.is_not(None), ~taken)
    with db.read() as conn:
        return int(conn.execute(select(func.count()).where(where)).scalar_one())


def count_harvestable(db: Database, model: str, base_id: str) -> int:
    """Labeled predictions of ``model`` that the version ``base_id`` (and its ancestry)
    does not hold: the rows a harvest into it takes."""
    from sqlalchemy import func

    where = _new_labeled(model, ancestry(db, base_id))
    with db.read() as conn:
        return int(conn.execute(select(func.count()).where(where)).scalar_one())


def fresh_rows(rows: int, share: float) -> int:
    """How many of ``rows`` harvested rows are held out: the nearest whole share (one row
    alone is never held out)."""
    return math.floor(rows * share + 0.5) if rows > 1 else 0


def unlink_harvest(db: Database, version_id: str) -> None:
    """Forget which predictions a version took in (its loop run failed): they count as new
    labels again. The version itself stays, immutable, like every version."""
    from sqlalchemy import delete

    with db.write() as conn:
        conn.execute(
            delete(prediction_harvests).where(prediction_harvests.c.dataset_version == version_id)
        )


def harvest(
    db: Database,
    blobs: BlobStore,
    model: str,
    base: DatasetVersion,
    *,
    fresh_share: float = 0.2,
    preprocessing: str = "auto",
) -> Harvest:
    """A new version: ``base`` plus ``model``'s labeled predictions it does not hold."""
    if preprocessing not in PREPROCESSING:
        raise ValidationError(f"preprocessing {preprocessing!r}: give auto, keep or refit")
    if isinstance(fresh_share, bool) or not isinstance(fresh_share, (int, float)):
        raise ValidationError(f"fresh share {fresh_share!r}: give a number from 0 to 0.9")
    if not 0 <= fresh_share <= 0.9 or math.isnan(fresh_share):
        raise ValidationError(f"fresh share {fresh_share!r}: give a number from 0 to 0.9")
    manifest = base.manifest
    if manifest.label is None:
        raise ValidationError(f"{base.ref} has no labels: labeled predictions cannot join it")
    columns = (
        predictions.c.request_id,
        predictions.c.version,
        predictions.c.at,
        predictions.c.input,
        predictions.c.input_digest,
        predictions.c.label,
    )
    with db.read() as conn:
        rows = conn.execute(
            select(*columns)
            .where(_new_labeled(model, ancestry(db, base.id)))
            .order_by(predictions.c.at, predictions.c.request_id)
        ).all()
    if not rows:
        raise NotFoundError(f"no labeled predictions of {model} that {base.ref} does not hold")
    x = _inputs(db, blobs, model, rows, manifest.features.shape, np.dtype(manifest.features.dtype))
    labels = np.asarray([json.loads(r.label) for r in rows])
    fresh = fresh_rows(len(rows), fresh_share)
    splits = [TRAIN_SPLIT] * (len(rows) - fresh) + [FRESH_SPLIT] * fresh
    request_ids = [r.request_id for r in rows]
    origin = f"labeled predictions of {model}"
    refit, why = _decide(preprocessing, base, x)
    target, method = base, ""
    if refit:
        target, method = _refit_target(base)
    appended, sample_ids = append_arrays(
        target, x, labels, splits=splits, origin=origin, keys=request_ids
    )
    new = normalize(appended, method=method, fit_split=TRAIN_SPLIT) if refit else appended
    _link(db, new.id, request_ids, sample_ids, splits, [r.label for r in rows])
    counts = {name: splits.count(name) for name in (TRAIN_SPLIT, FRESH_SPLIT)}
    done = "refitted" if refit else "kept"
    return Harvest(model, base, new, len(rows), counts, done, why, request_ids)


def _far_share(base: DatasetVersion, x: np.ndarray) -> float:
    """The share of the new rows that the kept scaling puts far out: more than
    ``FAR_VALUES`` of a row's values beyond ``FAR_Z`` (or not finite)."""
    with np.errstate(all="ignore"):
        scaled = apply_transforms(x.astype(np.float64), base.manifest.transforms)
        far = ~(np.abs(scaled.reshape(len(x), -1)) <= FAR_Z)
        return float(np.mean(far.mean(axis=1) > FAR_VALUES))


def _decide(preprocessing: str, base: DatasetVersion, x: np.ndarray) -> tuple[bool, str]:
    normalized = base.row.operation == "normalize" and len(base.row.parents) == 1
    if preprocessing == "refit" and not normalized:
        raise ValidationError(
            f"re-fitting re-fits a normalization, but {base.ref} was made by "
            f"{base.row.operation}, not normalize"
        )
    if not base.manifest.transforms:
        return False, "kept: the base has no fitted preprocessing"
    far = _far_share(base, x)
    said = (
        f"{far:.1%} of the new rows have over {FAR_VALUES:.0%} of their values beyond "
        f"{FAR_Z:g} fitted standard deviations"
    )
    if preprocessing == "refit":
        return (
            True,
            f"refitted (asked; {said}): the normalization was fitted again on the new train split",
        )
    if preprocessing == "keep" or far <= FAR_SHARE:
        return False, (
            f"kept ({said}): the base's fitted normalization applies to the new raw rows, so "
            "challenger and champion see the same scaling and differ by their data alone"
        )
    if not normalized:
        return False, (
            f"kept although {said}: {base.ref} was made by {base.row.operation}, so there is "
            "no normalization of its own to fit again"
        )
    return True, (
        f"refitted: {said} (production has drifted past the scaling fitted on the old "
        "data), so the normalization was fitted again on the new train split"
    )


def _refit_target(base: DatasetVersion) -> tuple[DatasetVersion, str]:
    """The version the base normalized, and the method it used."""
    row = get_row(base.db, base.row.parents[0])
    if row is None:
        raise NotFoundError(f"{base.ref}'s parent version is not recorded")
    params = base.summary.get("lineage", {}).get("params", {})
    method = str(params.get("method", "standard"))
    return DatasetVersion(row, base.blobs, base.db, base.home), method


def _inputs(
    db: Database,
    blobs: BlobStore,
    model: str,
    rows: Sequence[Any],
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
) -> np.ndarray:
    dtypes: dict[int, np.dtype[Any]] = {}
    out = np.empty((len(rows), *shape), dtype)
    for i, row in enumerate(rows):
        version = int(row.version)
        if version not in dtypes:
            try:
                signature = get_version(db, ModelRef(model, version=version)).signature
                dtypes[version] = np.dtype(signature["inputs"][0]["dtype"])
            except NotFoundError:
                dtypes[version] = dtype  # a deleted version: its inputs were the data's
        raw = bytes(row.input) if row.input is not None else blobs.get_bytes(row.input_digest)
        values = np.frombuffer(raw, dtypes[version])
        if values.size != out[i].size:
            raise ValidationError(
                f"prediction {row.request_id}'s input has {values.size} values; the dataset's "
                f"rows have {out[i].size}"
            )
        out[i] = values.reshape(shape)
    return out


def _link(
    db: Database,
    version_id: str,
    request_ids: list[str],
    sample_ids: np.ndarray,
    splits: list[str],
    labels: list[str],
) -> None:
    from hone.store.upsert import upsert

    entries = [
        {
            "request_id": rid,
            "dataset_version": version_id,
            "sample_id": int(sid),
            "split": split,
            "label": label,
        }
        for rid, sid, split, label in zip(request_ids, sample_ids, splits, labels, strict=True)
    ]
    with db.write() as conn:
        for start in range(0, len(entries), _CHUNK):
            upsert(
                conn,
                prediction_harvests,
                entries[start : start + _CHUNK],
                keys=["request_id", "dataset_version"],
            )
