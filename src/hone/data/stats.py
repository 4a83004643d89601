"""What `hone data show` reports: counts per split, label distribution, feature statistics,
non-finite values and duplicate rows. Computed once, when a version is made."""

from __future__ import annotations

from typing import Any

import numpy as np

from hone.errors import ValidationError

__all__ = ["MAX_FEATURE_STATS", "check_finite", "merge_summaries", "summarize"]

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
            "count": np.isfinite(flat).sum(axis=0),
            "mean": np.nanmean(finite, axis=0),
            "std": np.nanstd(finite, axis=0),
            "min": np.nanmin(finite, axis=0) if len(flat) else np.full(flat.shape[1], np.nan),
            "max": np.nanmax(finite, axis=0) if len(flat) else np.full(flat.shape[1], np.nan),
        }
    if flat.shape[1] <= MAX_FEATURE_STATS:
        summary["features"] = {
            name: {k: int(v[i]) if k == "count" else _num(v[i]) for k, v in stats.items()}
            for i, name in enumerate(names)
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


def merge_summaries(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The summary of two disjoint sets of rows, from theirs: counts add, means and
    variances combine exactly (Chan et al.), minima and maxima take the extremes.
    Duplicates are the sum of each part's own: a row of the new part equal to one of the
    old part is not counted (reading every old row to find it would undo O(k) appends)."""
    merged: dict[str, Any] = {
        "rows": old["rows"] + new["rows"],
        "splits": _add(old["splits"], new["splits"]),
        "nonfinite": _add(old["nonfinite"], new["nonfinite"]),
        "duplicates": old["duplicates"] + new["duplicates"],
    }
    if "features" in old and "features" in new:
        merged["features"] = {
            name: _merge_feature(stats, new["features"][name])
            for name, stats in old["features"].items()
        }
    if "labels" in old or "labels" in new:
        merged["labels"] = {
            split: _add(old.get("labels", {}).get(split, {}), new.get("labels", {}).get(split, {}))
            for split in sorted(set(old.get("labels", {})) | set(new.get("labels", {})))
        }
    return merged


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}


def _merge_feature(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    na, nb = a.get("count") or 0, b.get("count") or 0
    if not nb:
        return a
    if not na:
        return b
    n = na + nb
    delta = b["mean"] - a["mean"]
    mean = a["mean"] + delta * nb / n
    m2 = a["std"] ** 2 * na + b["std"] ** 2 * nb + delta**2 * na * nb / n
    return {
        "count": n,
        "mean": mean,
        "std": float(np.sqrt(m2 / n)),
        "min": min(a["min"], b["min"]),
        "max": max(a["max"], b["max"]),
    }


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
