"""What `hone data show` reports: counts per split, label distribution, feature statistics,
non-finite values and duplicate rows. Computed once, when a version is made, batch by
batch: nothing here holds more than one batch of rows.

- Feature statistics merge per batch exactly as two summaries merge (Chan et al.): counts
  add, means and variances combine, minima and maxima take the extremes.
- Duplicates are counted from a 64-bit hash per row (features and label): 8 bytes a row
  until the count is taken. Two different rows share a hash with probability about
  2**-64 per pair (under 1e-5 for 10 million rows), so the count is exact in practice.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from hone.errors import ValidationError

__all__ = [
    "MAX_CLASSES",
    "MAX_FEATURE_STATS",
    "FeatureStats",
    "LabelCounts",
    "RowHashes",
    "merge_summaries",
    "nonfinite_error",
    "summarize",
]

#: Per-feature statistics are kept for at most this many features (images get totals).
MAX_FEATURE_STATS = 512
#: Labels with more distinct values than this are not treated as classes.
MAX_CLASSES = 10_000


class FeatureStats:
    """Count, mean, spread, minimum and maximum of every feature over its finite values,
    and the number of NaN and infinite values, accumulated batch by batch."""

    def __init__(self, width: int) -> None:
        self.count = np.zeros(width, dtype=np.int64)
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)  # sum of squared deviations from the mean
        self.min = np.full(width, np.inf)
        self.max = np.full(width, -np.inf)
        self.nan = 0
        self.inf = 0
        self.bad_columns = np.zeros(width, dtype=bool)  # columns holding NaN or inf

    def add(self, values: np.ndarray | list[np.ndarray]) -> None:
        """Merge a batch: float64 values shaped (rows, features), or a list of columns."""
        if isinstance(values, list):
            self._add_columns(values)
            return
        flat = values
        if not len(flat):
            return
        with np.errstate(all="ignore"):
            total = flat.sum(axis=0)
        if np.isfinite(total).all():  # no NaN or inf (barring an overflowing sum)
            n = np.full(flat.shape[1], len(flat), dtype=np.int64)
            mean = total / len(flat)
            deviation = flat - mean
            m2 = np.einsum("ij,ij->j", deviation, deviation)
            low, high = flat.min(axis=0), flat.max(axis=0)
        else:
            finite = np.isfinite(flat)
            nan = np.isnan(flat)
            self.nan += int(nan.sum())
            self.inf += int((~finite & ~nan).sum())
            self.bad_columns |= ~finite.all(axis=0)
            n = finite.sum(axis=0)
            clean = np.where(finite, flat, 0.0)
            mean = clean.sum(axis=0) / np.maximum(n, 1)
            deviation = np.where(finite, flat - mean, 0.0)
            m2 = np.einsum("ij,ij->j", deviation, deviation)
            low = np.where(finite, flat, np.inf).min(axis=0)
            high = np.where(finite, flat, -np.inf).max(axis=0)
        self._merge(n, mean, m2, low, high)

    def _add_columns(self, columns: list[np.ndarray]) -> None:
        """The same, one contiguous column at a time (no matrix, no 2-D temporaries)."""
        width = len(columns)
        n = np.zeros(width, dtype=np.int64)
        mean, m2 = np.zeros(width), np.zeros(width)
        low, high = np.full(width, np.inf), np.full(width, -np.inf)
        # einsum, not a BLAS dot: OpenBLAS wakes its threads (which then spin) for every
        # vector, at a cost of more CPU than the statistics themselves.
        with np.errstate(all="ignore"):
            for j, column in enumerate(columns):
                if not len(column):
                    continue
                total = column.sum()
                if np.isfinite(total):
                    n[j] = len(column)
                    mean[j] = total / len(column)
                    deviation = column - mean[j]
                    m2[j] = np.einsum("i,i->", deviation, deviation)
                    low[j], high[j] = column.min(), column.max()
                    continue
                finite = np.isfinite(column)
                nan = int(np.isnan(column).sum())
                self.nan += nan
                self.inf += len(column) - int(finite.sum()) - nan
                self.bad_columns[j] |= not finite.all()
                good = column[finite]
                n[j] = len(good)
                if len(good):
                    mean[j] = good.mean()
                    deviation = good - mean[j]
                    m2[j] = np.einsum("i,i->", deviation, deviation)
                    low[j], high[j] = good.min(), good.max()
        self._merge(n, mean, m2, low, high)

    def merge(self, other: FeatureStats) -> None:
        """Add another set of rows' statistics (the same features)."""
        self._merge(other.count, other.mean, other.m2, other.min, other.max)
        self.nan += other.nan
        self.inf += other.inf
        self.bad_columns |= other.bad_columns

    def _merge(
        self, n: np.ndarray, mean: np.ndarray, m2: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> None:
        total = self.count + n
        safe = np.maximum(total, 1)
        delta = mean - self.mean
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf, reported as None
            self.m2 = self.m2 + m2 + delta**2 * self.count * n / safe
            self.mean = np.where(total > 0, self.mean + delta * n / safe, 0.0)
        self.count = total
        self.min = np.minimum(self.min, low)
        self.max = np.maximum(self.max, high)

    @property
    def nonfinite(self) -> dict[str, int]:
        return {"nan": self.nan, "inf": self.inf}

    def summary(self, names: tuple[str, ...]) -> dict[str, Any]:
        """``{"features": {name: stats}}``, or ``{"features_total": stats}`` past
        ``MAX_FEATURE_STATS`` features."""
        width = len(self.count)
        if width <= MAX_FEATURE_STATS:
            std = np.sqrt(self.m2 / np.maximum(self.count, 1))
            return {
                "features": {
                    name: {
                        "count": int(self.count[i]),
                        "mean": _num(self.mean[i]) if self.count[i] else None,
                        "std": _num(std[i]) if self.count[i] else None,
                        "min": _num(self.min[i]),
                        "max": _num(self.max[i]),
                    }
                    for i, name in enumerate(names)
                }
            }
        n = int(self.count.sum())
        mean = float((self.count * self.mean).sum() / n) if n else np.nan
        m2 = float(self.m2.sum() + (self.count * (self.mean - mean) ** 2).sum()) if n else np.nan
        return {
            "features_total": {
                "mean": _num(mean),
                "std": _num(np.sqrt(m2 / n)) if n else None,
                "min": _num(self.min.min()),
                "max": _num(self.max.max()),
            }
        }


def nonfinite_error(stats: FeatureStats, names: tuple[str, ...]) -> ValidationError:
    bad = np.flatnonzero(stats.bad_columns)
    where = ", ".join(names[i] if i < len(names) else f"#{i}" for i in bad[:8])
    return ValidationError(
        f"the features hold {stats.nan} NaN and {stats.inf} infinite value(s), "
        f"in {where}{' …' if len(bad) > 8 else ''} (empty cells count as NaN); pass "
        "--allow-nonfinite (allow_nonfinite=True) to keep them"
    )


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: every output bit depends on every input bit."""
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= _MIX1
        z ^= z >> np.uint64(27)
        z *= _MIX2
        z ^= z >> np.uint64(31)
    return z


def _multipliers(width: int, salt: int) -> np.ndarray:
    rng = np.random.default_rng([width, salt])
    return rng.integers(0, 2**63, width, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


class RowHashes:
    """A 64-bit hash of every row (features and label), kept to count duplicates.

    A row's words are combined linearly with random odd multipliers twice, once as
    stored and once byte-swapped (so rows differing only in high bits, such as small
    integers stored as floats, separate as well as rows differing in low bits), then
    mixed. One vectorized pass over a batch, no per-row Python."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []

    def add(self, values: np.ndarray | list[np.ndarray], labels: np.ndarray | None) -> None:
        """``values``: rows shaped (rows, features), or a list of float64 columns (the same
        hashes either way, for float64); ``labels`` as stored. Values are compared as
        stored when 8 bytes wide, as float64 otherwise: one import passes one dtype."""
        if isinstance(values, list):
            self._add_columns(values, labels)
            return
        if not (values.dtype.itemsize == 8 and values.dtype.kind in "iuf"):
            values = values.astype(np.float64)
        words = np.ascontiguousarray(values).view(np.uint64)
        if labels is not None:
            words = np.column_stack([words, label_words(labels)])
        width = words.shape[1]
        with np.errstate(over="ignore"):
            low = words @ _multipliers(width, 1) if width else np.zeros(len(words), np.uint64)
            high = (
                words.byteswap() @ _multipliers(width, 2)
                if width
                else np.zeros(len(words), np.uint64)
            )
            self._parts.append(_mix(low ^ _mix(high)))

    def _add_columns(self, columns: list[np.ndarray], labels: np.ndarray | None) -> None:
        words = [np.ascontiguousarray(c).view(np.uint64) for c in columns]
        if labels is not None:
            words.append(label_words(labels))
        width = len(words)
        rows = len(words[0]) if words else 0
        low, high = np.zeros(rows, np.uint64), np.zeros(rows, np.uint64)
        a, b = _multipliers(width, 1), _multipliers(width, 2)
        with np.errstate(over="ignore"):
            for j, word in enumerate(words):
                low += word * a[j]
                high += word.byteswap() * b[j]
            self._parts.append(_mix(low ^ _mix(high)))

    def duplicates(self) -> int:
        """Rows equal to an earlier row (frees the hashes)."""
        if not self._parts:
            return 0
        hashes = np.concatenate(self._parts)
        self._parts = []
        hashes.sort()
        return int(np.count_nonzero(hashes[1:] == hashes[:-1]))


def label_words(labels: np.ndarray) -> np.ndarray:
    """One uint64 per label: numbers by their float64 bits, text by a digest of it."""
    if labels.dtype.kind in "biuf":
        return np.ascontiguousarray(labels, dtype=np.float64).view(np.uint64)
    values, inverse = np.unique(labels.astype(str), return_inverse=True)
    digests = np.array(
        [
            int.from_bytes(hashlib.blake2b(str(v).encode(), digest_size=8).digest(), "little")
            for v in values.tolist()
        ],
        dtype=np.uint64,
    )
    return digests[inverse.reshape(-1)]


class LabelCounts:
    """Rows per distinct label value, while there are at most ``limit`` values (more and
    the labels are not classes: regression targets, ids)."""

    def __init__(self, limit: int | None = MAX_CLASSES) -> None:
        self.counts: dict[Any, int] | None = {}
        self.limit = limit

    def add(self, labels: np.ndarray) -> None:
        if self.counts is None:
            return
        values, counts = np.unique(labels, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            self.counts[value] = self.counts.get(value, 0) + count
        if self.limit is not None and len(self.counts) > self.limit:
            self.counts = None

    def classes(self) -> list[Any] | None:
        """The distinct values, sorted; None past the limit."""
        return None if self.counts is None else sorted(self.counts)


def summarize(
    features: np.ndarray,
    names: tuple[str, ...],
    labels: np.ndarray | None,
    splits: np.ndarray,
    nonfinite: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The summary of rows held in memory (derived versions): one batch through the same
    accumulators an import uses."""
    flat = features.reshape(len(features), -1).astype(np.float64, copy=False)
    stats = FeatureStats(flat.shape[1])
    stats.add(flat)
    hashes = RowHashes()
    hashes.add(flat, labels)
    split_names, split_counts = np.unique(splits, return_counts=True)
    summary: dict[str, Any] = {
        "rows": len(features),
        "splits": {str(n): int(c) for n, c in zip(split_names, split_counts, strict=True)},
        "nonfinite": nonfinite if nonfinite is not None else stats.nonfinite,
        "duplicates": hashes.duplicates(),
        **stats.summary(names),
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
    ends = {
        "min": _extreme(min, a.get("min"), b.get("min")),
        "max": _extreme(max, a.get("max"), b.get("max")),
    }
    moments = (a.get("mean"), a.get("std"), b.get("mean"), b.get("std"))
    if any(m is None for m in moments):  # a side's values overflowed: no mean to merge
        return {"count": n, "mean": None, "std": None, **ends}
    delta = b["mean"] - a["mean"]
    with np.errstate(over="ignore", invalid="ignore"):
        mean = a["mean"] + delta * nb / n
        m2 = a["std"] ** 2 * na + b["std"] ** 2 * nb + delta**2 * na * nb / n
        std = np.sqrt(m2 / n)
    return {"count": n, "mean": _num(mean), "std": _num(std), **ends}


def _extreme(pick: Any, a: float | None, b: float | None) -> float | None:
    present = [v for v in (a, b) if v is not None]
    return pick(present) if present else None


def _distribution(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {str(v): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)}


def _num(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
