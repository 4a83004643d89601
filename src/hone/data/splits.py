"""Split specs ("train=0.8,test=0.2") and deterministic, optionally stratified assignment.

How rows are allocated. Each split's share of the rows is ``rows * fraction``, computed
exactly (fractions are taken to six decimal places, as integers over their sum). Without
stratification, every split gets the floor of its share and the rows left over go to the
largest remainders (ties: the split named first). With stratification, every class is
divided that way, as hone always did; if that leaves some split's total a row or more
away from its share (ties always broken toward the same split: 50 classes of 3 rows at
0.8/0.1/0.1 gave 150/0/0), the left-over rows of each class go instead to the splits
furthest *behind their overall share* so far (classes in sorted order), which gives
120/15/15. Either way every split's total is within one row of ``rows * fraction`` and
every class's count in every split within one row of ``class_rows * fraction`` (a repair
step moves single rows between classes should the greedy pass ever miss; the flow
argument in ``_repair`` shows it always can). Which rows of a class go where is a seeded
permutation, as before.

A class with too few rows to reach every split is a warning (``SplitWarning``), not an
error: it is often what a user wants (rare classes), and always worth knowing.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from hone.errors import ValidationError

__all__ = [
    "DEFAULT_SPLIT",
    "SplitWarning",
    "allocate",
    "assign_splits",
    "check_seed",
    "codes_by_class",
    "parse_split_spec",
    "small_class_warning",
]

DEFAULT_SPLIT = "all"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
#: Fractions are exact to this many parts: 0.8 is 800000/1000000.
_SCALE = 1_000_000


class SplitWarning(UserWarning):
    """A stratified split could not give some class a row in every split."""


def check_seed(seed: object) -> int:
    """A seed is a non-negative integer (NumPy integers included); anything else is refused
    rather than reinterpreted, so that one seed always means one split."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValidationError(f"seed {seed!r}: use a non-negative integer, e.g. seed=0")
    value = operator.index(seed)
    if value < 0:
        raise ValidationError(f"seed {value}: use a non-negative integer (0 or more)")
    return value


def parse_split_spec(spec: str | dict[str, float] | None) -> dict[str, float]:
    """``"train=0.8,test=0.2"`` → ``{"train": 0.8, "test": 0.2}``; None → every row in "all"."""
    if spec is None:
        return {DEFAULT_SPLIT: 1.0}
    if isinstance(spec, dict):
        parts = {name: _fraction(name, value, spec) for name, value in spec.items()}
    elif isinstance(spec, str):
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
    else:
        raise ValidationError(
            f"split {spec!r}: give a text spec such as 'train=0.8,test=0.2' or a dict of "
            "name → fraction"
        )
    for name, fraction in parts.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValidationError(f"split name {name!r}: use letters, digits, _ and -")
        if not math.isfinite(fraction) or not 0 < fraction <= 1:
            raise ValidationError(f"split {name!r}: fraction {fraction} must be in (0, 1]")
    total = sum(parts.values())
    if not parts or abs(total - 1.0) > 1e-6:
        raise ValidationError(
            f"split fractions must sum to 1, got {total:g} ({', '.join(parts) or 'none'})"
        )
    return parts


def _fraction(name: object, value: object, spec: dict[Any, Any]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValidationError(
            f"split {name!r}: fraction {value!r} is not a number (in {spec!r}); "
            "use e.g. {'train': 0.8, 'test': 0.2}"
        )
    return float(value)


def _weights(fractions: Sequence[float]) -> list[int]:
    weights = [round(f * _SCALE) for f in fractions]
    if not all(weights):
        raise ValidationError("split fractions below 0.000001 are too small to allocate")
    return weights


def allocate(class_sizes: Sequence[int] | np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Rows per (class, split): an int64 array of shape (classes, splits).

    Every row sums to its class size; every entry is within one of
    ``class_size * fraction``; every column within one of ``total * fraction``.
    """
    sizes = np.asarray(class_sizes, dtype=np.int64)
    weights = np.asarray(_weights(fractions), dtype=np.int64)
    denominator = int(weights.sum())
    exact = sizes[:, None] * weights[None, :]  # in units of 1/denominator
    remainders = exact % denominator
    counts = _per_class(exact // denominator, remainders, sizes)
    total = int(sizes.sum())
    low = total * weights // denominator
    high = low + (total * weights % denominator > 0)
    column = counts.sum(axis=0)
    if ((column >= low) & (column <= high)).all():
        return counts  # what hone always allocated, and still right
    counts = exact // denominator
    # Running error per split, in 1/denominator units: allocated - share, so far.
    behind = np.zeros(len(weights), dtype=np.int64)
    order = np.arange(len(weights))
    for c in range(len(sizes)):
        extra = int(sizes[c] - counts[c].sum())
        behind -= remainders[c]
        if extra:
            eligible = order[remainders[c] > 0]
            # furthest behind first; then the largest remainder; then the split named first
            rank = np.lexsort((eligible, -remainders[c][eligible], behind[eligible]))
            chosen = eligible[rank[:extra]]
            counts[c, chosen] += 1
            behind[chosen] += denominator
    _repair(counts, remainders, sizes, weights)
    return counts


def _per_class(counts: np.ndarray, remainders: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Largest remainder within each class alone (ties: the split named first)."""
    extra = sizes - counts.sum(axis=1)
    # rank of each split within its class: largest remainder first, then spec order
    order = np.argsort(-remainders, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(counts.shape[1])[None, :], axis=1)
    allocated: np.ndarray = counts + (ranks < extra[:, None])
    return allocated


def _repair(
    counts: np.ndarray, remainders: np.ndarray, sizes: np.ndarray, weights: np.ndarray
) -> None:
    """Move rows between splits, within classes, until every split total is within one of
    its share. A class can give a row from split u to split v when it rounded u up and v
    down (and v's share of it is fractional); chains of such moves are augmenting paths
    in the small graph of splits. If an allocation within bounds exists (one always
    does: the fractional shares themselves are a feasible flow, and integral flows
    exist when capacities are integral), a split over its bound has a path to a split
    under its own, so this loop ends within bounds."""
    total = int(sizes.sum())
    denominator = int(weights.sum())
    low = total * weights // denominator
    high = low + (total * weights % denominator > 0)
    floor = sizes[:, None] * weights[None, :] // denominator
    for _ in range(total + 1):
        column = counts.sum(axis=0)
        over = np.flatnonzero(column > high)
        under = np.flatnonzero(column < low)
        if not len(over) and not len(under):
            return
        # from a split over its bound to one with room, or from one with spare to one under
        sources = over if len(over) else np.flatnonzero(column > low)
        targets = np.flatnonzero(column < high) if len(over) else under
        path = _path(counts > floor, remainders > 0, sources, targets)
        if path is None:
            raise AssertionError("no allocation within bounds: a bug in split allocation")
        for u, v, c in path:
            counts[c, u] -= 1
            counts[c, v] += 1
    raise AssertionError("split allocation did not converge")


def _path(
    rounded_up: np.ndarray,
    fractional: np.ndarray,
    sources: np.ndarray,
    targets: np.ndarray,
) -> list[tuple[int, int, int]] | None:
    """A shortest chain of single-row moves (split u → split v via class c) from a source
    split to a target split, by breadth-first search over the splits."""
    splits = rounded_up.shape[1]
    previous: dict[int, tuple[int, int]] = {int(s): (-1, -1) for s in sources}
    frontier = [int(s) for s in sources]
    wanted = {int(t) for t in targets}
    while frontier:
        following = []
        for u in frontier:
            for v in range(splits):
                if v in previous:
                    continue
                movable = np.flatnonzero(rounded_up[:, u] & ~rounded_up[:, v] & fractional[:, v])
                if not len(movable):
                    continue
                previous[v] = (u, int(movable[0]))
                if v in wanted:
                    path = []
                    while previous[v][0] != -1:
                        u_, c = previous[v]
                        path.append((u_, v, c))
                        v = u_
                    return path[::-1]
                following.append(v)
        frontier = following
    return None


def codes_by_class(counts: np.ndarray, seed: int) -> np.ndarray:
    """The split (as an index into the spec's splits) of every row, grouped by class in
    sorted class order, and within a class by the row's rank among that class's rows:
    the seeded permutation of each class assigns its first ``counts[c, 0]`` rows to the
    first split, and so on (the assignment hone has always made)."""
    rng = np.random.default_rng(seed)
    sizes = counts.sum(axis=1)
    out = np.empty(int(sizes.sum()), dtype=np.int8)
    start = 0
    for c, size in enumerate(sizes.tolist()):
        permutation = rng.permutation(size)
        mine = out[start : start + size]
        position = 0
        for split, count in enumerate(counts[c].tolist()):
            mine[permutation[position : position + count]] = split
            position += count
        start += size
    return out


def small_class_warning(
    classes: Sequence[object], counts: np.ndarray, names: Sequence[str]
) -> str | None:
    """The warning for classes that some split got no row of, or None."""
    missing = np.flatnonzero((counts == 0).any(axis=1))
    if not len(missing):
        return None
    shown = "; ".join(
        f"{classes[c]!r} ({int(counts[c].sum())} rows: "
        + ", ".join(f"{n} {int(k)}" for n, k in zip(names, counts[c], strict=True))
        + ")"
        for c in missing[:5]
    )
    return (
        f"stratified split: {len(missing)} of {len(classes)} class(es) are too small to "
        f"have a row in every split: {shown}{' …' if len(missing) > 5 else ''}. Each "
        "split's total is still within one row of its fraction"
    )


def assign_splits(
    rows: int,
    fractions: dict[str, float],
    seed: int,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, str | None]:
    """The split name of each row (a numpy array of strings), and the small-class warning
    if any. Deterministic for a given (rows, fractions, seed, labels). In memory: the
    streaming importer uses ``allocate`` and ``codes_by_class`` directly."""
    names = list(fractions)
    if labels is None:
        counts = allocate([rows], list(fractions.values()))
        codes = codes_by_class(counts, seed)
        return np.asarray(names)[codes], None
    classes, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    counts = allocate(sizes, list(fractions.values()))
    grouped = codes_by_class(counts, seed)
    order = np.argsort(inverse, kind="stable")  # rows by class, then by position
    codes = np.empty(rows, dtype=np.int8)
    codes[order] = grouped
    warning = small_class_warning([_plain(c) for c in classes], counts, names)
    return np.asarray(names)[codes], warning


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
