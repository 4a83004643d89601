"""``/api`` for datasets: the list, a dataset's versions as a tree, one version's schema and
statistics, a feature's histogram, thumbnails of an image version, the diff of two."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Query

from hone.data import api, compare
from hone.data.chunks import read_table
from hone.data.dataset import DatasetVersion, features_of
from hone.data.manifest import LABEL
from hone.errors import ValidationError
from hone.models.workspace import Opened
from hone.server.images import as_picture, data_url, picture_shape

__all__ = ["data_router"]

MAX_BINS = 200
MAX_THUMBNAILS = 200


def data_router(ws: Opened) -> APIRouter:
    router = APIRouter(prefix="/api/datasets", tags=["datasets"])
    where = ws.workspace

    @router.get("", summary="Every dataset with its newest version")
    def datasets() -> list[dict[str, Any]]:
        return [
            {"name": d.name, "versions": d.versions, "latest": d.latest.to_dict()}
            for d in api.list_datasets(workspace=where)
        ]

    @router.get("/versions", summary="A dataset's versions as a tree (depth first)")
    def versions(
        name: str = Query(..., description="The dataset's name."),
    ) -> list[dict[str, Any]]:
        tree = compare.history(api.versions(name, workspace=where))
        return [{**v.to_dict(), "depth": depth} for depth, v in tree]

    @router.get("/version", summary="One version: schema, splits, labels, statistics")
    def version(
        ref: str = Query(..., description="NAME@VERSION-PREFIX or NAME."),
    ) -> dict[str, Any]:
        found = api.get(ref, workspace=where)
        shape = found.manifest.features.shape
        return {
            **found.row.to_dict(),
            "ref": found.ref,
            "picture": picture_shape(shape, found.manifest.feature_names) is not None,
        }

    @router.get("/histogram", summary="A feature's histogram over a split (raw values)")
    def histogram(
        ref: str = Query(...),
        feature: str = Query(..., description="A feature's name."),
        split: str = Query(default="", description="A split; every row if empty."),
        bins: int = Query(default=30, ge=1, le=MAX_BINS),
    ) -> dict[str, Any]:
        found = api.get(ref, workspace=where)
        names = list(found.manifest.feature_names)
        if feature not in names:
            raise ValidationError(
                f"{found.ref} has no feature {feature!r}; it has {', '.join(names[:10])}"
                + (" …" if len(names) > 10 else "")
            )
        _check_split(found, split)
        return {
            "feature": feature,
            "split": split or None,
            **_histogram(found, split, names.index(feature), bins),
        }

    @router.get("/thumbnails", summary="The first rows of a split drawn as pictures")
    def thumbnails(
        ref: str = Query(...),
        split: str = Query(default=""),
        n: int = Query(default=48, ge=1, le=MAX_THUMBNAILS),
    ) -> dict[str, Any]:
        found = api.get(ref, workspace=where)
        _check_split(found, split)
        return {"ref": found.ref, "split": split or None, "items": _pictures(found, split, n)}

    @router.get("/diff", summary="Rows added, removed, relabeled and moved, by split")
    def diff(old: str = Query(...), new: str = Query(...)) -> dict[str, Any]:
        return compare.diff(api.get(old, workspace=where), api.get(new, workspace=where)).to_dict()

    return router


def _check_split(found: DatasetVersion, split: str) -> None:
    if split and split not in found.splits:
        raise ValidationError(
            f"{found.ref} has no split {split!r}; it has {', '.join(sorted(found.splits))}"
        )


def _chunks_of(found: DatasetVersion, split: str) -> Iterator[pa.Table]:
    """The version's rows one chunk at a time (only ``split``'s): a large version is never
    read whole to draw a histogram or a few thumbnails."""
    for chunk in found.manifest.chunks:
        table = read_table((chunk,), found.blobs, split or None)
        if table.num_rows:
            yield table


def _histogram(found: DatasetVersion, split: str, column: int, bins: int) -> dict[str, Any]:
    """``bins`` equal bins over the feature's finite range, in two passes over the chunks
    (the range, then the counts); one bin when the range is too narrow or too wide for that
    many finite-sized ones (values a few float steps apart)."""

    def values() -> Iterator[np.ndarray]:
        for table in _chunks_of(found, split):
            x = features_of(table, found.manifest)
            yield x.reshape(len(x), -1)[:, column].astype(np.float64)

    rows = nonfinite = 0
    low, high = math.inf, -math.inf
    for v in values():
        finite = v[np.isfinite(v)]
        rows += len(v)
        nonfinite += len(v) - len(finite)
        if len(finite):
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    out: dict[str, Any] = {"rows": rows, "nonfinite": nonfinite, "counts": [], "edges": []}
    if low > high:
        return out
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            edges = np.histogram_bin_edges([low, high], bins=bins, range=(low, high))
            counts = np.zeros(len(edges) - 1, np.int64)
            for v in values():
                counts += np.histogram(v[np.isfinite(v)], bins=edges)[0]
    except ValueError:
        edges, counts = np.array([low, high]), np.array([rows - nonfinite])
    out["counts"], out["edges"] = counts.tolist(), edges.tolist()
    return out


def _pictures(found: DatasetVersion, split: str, n: int) -> list[dict[str, Any]]:
    manifest = found.manifest
    shape = manifest.features.shape
    if picture_shape(shape, manifest.feature_names) is None:
        raise ValidationError(
            f"{found.ref}'s rows have shape {tuple(shape)}: no picture to draw (pictures are "
            "(H, W), (H, W, C) or a square number of values named pixel…)"
        )
    items: list[dict[str, Any]] = []
    for table in _chunks_of(found, split):
        table = table.slice(0, n - len(items))
        x = features_of(table, manifest)
        labels = table.column(LABEL).to_pylist() if manifest.label is not None else None
        for i in range(len(x)):
            pixels = as_picture(x[i], shape, manifest.feature_names)
            assert pixels is not None
            items.append({"label": None if labels is None else labels[i], "src": data_url(pixels)})
        if len(items) >= n:
            break
    return items
