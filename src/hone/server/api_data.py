"""``/api`` for datasets: the list, a dataset's versions as a tree, one version's schema and
statistics, a feature's histogram, thumbnails of an image version, the diff of two."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Query

from hone.data import api, compare
from hone.data.dataset import DatasetVersion
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
            "picture": picture_shape(shape) is not None,
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
        x, _ = found.to_numpy(split or None, raw=True)
        column = x.reshape(len(x), -1)[:, names.index(feature)].astype(np.float64)
        finite = column[np.isfinite(column)]
        counts, edges = _histogram(finite, bins)
        return {
            "feature": feature,
            "split": split or None,
            "rows": len(column),
            "nonfinite": int(len(column) - len(finite)),
            "counts": np.asarray(counts, dtype=np.int64).tolist(),
            "edges": np.asarray(edges, dtype=np.float64).tolist(),
        }

    @router.get("/thumbnails", summary="The first rows of a split drawn as pictures")
    def thumbnails(
        ref: str = Query(...),
        split: str = Query(default=""),
        n: int = Query(default=48, ge=1, le=MAX_THUMBNAILS),
    ) -> dict[str, Any]:
        found = api.get(ref, workspace=where)
        return {"ref": found.ref, "split": split or None, "items": _pictures(found, split, n)}

    @router.get("/diff", summary="Rows added, removed, relabeled and moved, by split")
    def diff(old: str = Query(...), new: str = Query(...)) -> dict[str, Any]:
        return compare.diff(api.get(old, workspace=where), api.get(new, workspace=where)).to_dict()

    return router


def _histogram(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``bins`` equal bins over the values' range, or one bin when the range is too narrow
    (or too wide) for that many finite-sized bins: values a few float steps apart."""
    if len(values) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.histogram(values, bins=bins)
    except ValueError:
        low, high = float(values.min()), float(values.max())
        return np.array([len(values)]), np.array([low, high])


def _pictures(found: DatasetVersion, split: str, n: int) -> list[dict[str, Any]]:
    shape = found.manifest.features.shape
    if picture_shape(shape) is None:
        raise ValidationError(
            f"{found.ref}'s rows have shape {tuple(shape)}: no picture to draw "
            "(pictures are (H, W), (H, W, C) or a square number of values)"
        )
    x, y = found.to_numpy(split or None, raw=True)
    items = []
    for i in range(min(n, len(x))):
        pixels = as_picture(x[i], shape)
        assert pixels is not None
        label = None if y is None else y[i].item() if hasattr(y[i], "item") else y[i]
        items.append({"label": label, "src": data_url(pixels)})
    return items
