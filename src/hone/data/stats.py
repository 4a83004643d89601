"""What `hone data show` reports: counts per split, label distribution, feature statistics,
non-finite values and duplicate rows. Computed once, when a version is made."""

from __future__ import annotations

from typing import Any

import numpy as np

from hone.errors import ValidationError

__all__ = ["MAX_FEATURE_STATS", "check_finite", "summarize"]

#: Per-feature statistics are kept for at most this many features (images get totals).
MAX_FEATURE_STATS = 512


def check_finite(features: np.ndarray, names: tuple[str, ...], allow: bool) -> dict[str, int]:
    """Count NaN and ±inf values; raise unless ``allow``, naming the columns."""
    if not np.issubdtype(features.dtype, np.floating):
        return {"nan": 0, "inf": 0}
    flat = features.reshape(len(features), -1)
    nan = np.isnan(flat)
    inf = np.isinf(flat)
    counts = {"nan": int(nan.sum()), "inf": int(inf.sum())}
    if (counts["nan"] or counts["inf"]) and not allow:
        bad = np.flatnonzero((nan | inf).any(axis=0))
        where = ", ".join(names[i] for i in bad[:8]) + (" …" if len(bad) > 8 else "")
        raise ValidationError(
            f"the features hold {counts['nan']} NaN and {counts['inf']} infinite value(s), "
            f"in {where}; pass --allow-nonfinite (allow_nonfinite=True) to keep them"
        )
    return counts


def summarize(
    features: np.ndarray,
    names: tuple[str, ...],
    labels: np.ndarray | None,
    splits: np.ndarray,
    nonfinite: dict[str, int],
) -> dict[str, Any]:
    flat = features.reshape(len(features), -1).astype(np.float64, copy=False)
    split_names, split_counts = np.unique(splits, return_counts=True)
    summary: dict[str, Any] = {
        "rows": len(features),
        "splits": {str(n): int(c) for n, c in zip(split_names, split_counts, strict=True)},
        "nonfinite": nonfinite,
        "duplicates": _duplicates(flat, labels),
    }
    finite = np.where(np.isfinite(flat), flat, np.nan)
    with np.errstate(all="ignore"):
        stats = {
            "mean": np.nanmean(finite, axis=0),
            "std": np.nanstd(finite, axis=0),
            "min": np.nanmin(finite, axis=0) if len(flat) else np.full(flat.shape[1], np.nan),
            "max": np.nanmax(finite, axis=0) if len(flat) else np.full(flat.shape[1], np.nan),
        }
    if flat.shape[1] <= MAX_FEATURE_STATS:
        summary["features"] = {
            name: {k: _num(v[i]) for k, v in stats.items()} for i, name in enumerate(names)
        }
    else:
        summary["features_total"] = {
            "mean": _num(np.nanmean(finite)),
            "std": _num(np.nanstd(finite)),
            "min": _num(np.nanmin(finite)),
            "max": _num(np.nanmax(finite)),
        }
    if labels is not None:
        summary["labels"] = {
            str(split): _distribution(labels[splits == split]) for split in split_names
        }
    return summary


def _duplicates(flat: np.ndarray, labels: np.ndarray | None) -> int:
    """Rows equal (features and label) to an earlier row."""
    if not len(flat):
        return 0
    rows = np.ascontiguousarray(flat)
    if labels is not None and np.issubdtype(np.asarray(labels).dtype, np.number):
        rows = np.column_stack([rows, np.asarray(labels, dtype=np.float64)])
    view = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))
    return int(len(view) - len(np.unique(view)))


def _distribution(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}


def _num(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
