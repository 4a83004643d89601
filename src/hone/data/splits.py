"""Split specs ("train=0.8,test=0.2") and deterministic, optionally stratified assignment."""

from __future__ import annotations

import math
import re

import numpy as np

from hone.errors import ValidationError

__all__ = ["DEFAULT_SPLIT", "assign_splits", "parse_split_spec"]

DEFAULT_SPLIT = "all"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


def parse_split_spec(spec: str | dict[str, float] | None) -> dict[str, float]:
    """``"train=0.8,test=0.2"`` → ``{"train": 0.8, "test": 0.2}``; None → every row in "all"."""
    if spec is None:
        return {DEFAULT_SPLIT: 1.0}
    if isinstance(spec, dict):
        parts = dict(spec)
    else:
        parts = {}
        if "=" not in spec and "," not in spec:
            spec = f"{spec.strip()}=1"  # a bare name: every row joins that split
        for item in spec.split(","):
            name, eq, value = item.strip().partition("=")
            if not eq:
                raise ValidationError(f"split spec {spec!r}: expected NAME=FRACTION, got {item!r}")
            try:
                parts[name.strip()] = float(value)
            except ValueError as exc:
                raise ValidationError(
                    f"split spec {spec!r}: {value.strip()!r} is not a number"
                ) from exc
    for name, fraction in parts.items():
        if not _NAME.match(name):
            raise ValidationError(f"split name {name!r}: use letters, digits, _ and -")
        if not 0 < fraction <= 1 or not math.isfinite(fraction):
            raise ValidationError(f"split {name!r}: fraction {fraction} must be in (0, 1]")
    total = sum(parts.values())
    if not parts or abs(total - 1.0) > 1e-6:
        raise ValidationError(
            f"split fractions must sum to 1, got {total:g} ({', '.join(parts) or 'none'})"
        )
    return parts


def assign_splits(
    rows: int,
    fractions: dict[str, float],
    seed: int,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """The split name of each row, as a numpy array of strings.

    Deterministic for a given (rows, fractions, seed, labels). With ``labels`` the split is
    stratified: each class is divided in the same proportions (largest remainder), as
    scikit-learn's ``train_test_split(stratify=…)`` does.
    """
    names = list(fractions)
    out = np.empty(rows, dtype=object)
    rng = np.random.default_rng(seed)
    groups = [np.arange(rows)] if labels is None else _by_class(labels)
    for group in groups:
        order = group[rng.permutation(len(group))]
        counts = _allocate(len(group), [fractions[n] for n in names])
        start = 0
        for name, count in zip(names, counts, strict=True):
            out[order[start : start + count]] = name
            start += count
    return out.astype(str)


def _by_class(labels: np.ndarray) -> list[np.ndarray]:
    _, inverse = np.unique(labels, return_inverse=True)
    return [np.flatnonzero(inverse == code) for code in range(int(inverse.max()) + 1)]


def _allocate(total: int, fractions: list[float]) -> list[int]:
    exact = [total * f for f in fractions]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts
