"""Split allocation (issue 6, fault 14): overall proportions are met, per class and in total."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hone
import hone.data
from hone.config import Workspace
from hone.data.splits import (
    SplitWarning,
    _per_class,
    _repair,
    allocate,
    assign_splits,
    codes_by_class,
    parse_split_spec,
)
from hone.errors import ValidationError


def _totals(sizes: list[int], fractions: list[float]) -> list[int]:
    return [int(n) for n in allocate(sizes, fractions).sum(axis=0)]


@pytest.mark.parametrize(
    ("sizes", "fractions", "expected"),
    [
        ([3] * 50, [0.8, 0.1, 0.1], [120, 15, 15]),  # was 150/0/0
        ([1] * 100, [0.8, 0.2], [80, 20]),  # was 100/0
        ([7] * 10, [0.7, 0.2, 0.1], [49, 14, 7]),
        ([5] * 3, [0.5, 0.5], [8, 7]),  # 7.5 each: the first split takes the odd row
        ([2] * 9, [1 / 3, 1 / 3, 1 / 3], [6, 6, 6]),
        ([50, 50, 50], [0.8, 0.2], [120, 30]),  # iris: no remainder anywhere
        ([1], [0.5, 0.5], [1, 0]),
    ],
)
def test_allocation_meets_overall_proportions(
    sizes: list[int], fractions: list[float], expected: list[int]
) -> None:
    counts = allocate(sizes, fractions)
    assert counts.sum(axis=0).tolist() == expected
    assert counts.sum(axis=1).tolist() == sizes


def test_allocation_properties_over_random_shapes() -> None:
    """For many class-size vectors and split specs: every split total within one row of
    its exact share, every class's count in every split within one row of its own."""
    rng = np.random.default_rng(2026)
    checked = 0
    for _ in range(1500):
        classes = int(rng.integers(1, 80))
        splits = int(rng.integers(1, 6))
        sizes = rng.integers(1, int(rng.choice([2, 4, 10, 100, 5000])), classes)
        raw = rng.random(splits) + 0.02
        fractions = [round(f, 6) for f in (raw / raw.sum()).tolist()]
        fractions[-1] = round(1 - sum(fractions[:-1]), 6)
        if min(fractions) <= 0:
            continue
        counts = allocate(sizes, fractions)
        weights = np.array([round(f * 1_000_000) for f in fractions])
        exact = sizes[:, None] * weights / weights.sum()
        assert (counts.sum(axis=1) == sizes).all()
        assert (np.abs(counts - exact) < 1).all()
        assert (np.abs(counts.sum(axis=0) - exact.sum(axis=0)) < 1).all()
        checked += 1
    assert checked > 1000


def test_unstratified_allocation_is_largest_remainder() -> None:
    assert _totals([10], [0.75, 0.25]) == [8, 2]  # 7.5/2.5: the tie goes to the first
    assert _totals([5], [0.7, 0.3]) == [4, 1]  # 3.5/1.5 exactly, not float noise
    assert _totals([3], [1 / 3, 1 / 3, 1 / 3]) == [1, 1, 1]


def test_repair_moves_rows_into_bounds_from_a_bad_start() -> None:
    """The repair step on its own: from per-class largest remainder (150/0/0) to within
    one row of every split's share, keeping every class's counts within one row."""
    sizes = np.array([3] * 50)
    weights = np.array([800_000, 100_000, 100_000])
    exact = sizes[:, None] * weights[None, :]
    remainders = exact % 1_000_000
    counts = _per_class(exact // 1_000_000, remainders, sizes)
    assert counts.sum(axis=0).tolist() == [150, 0, 0]
    _repair(counts, remainders, sizes, weights)
    assert counts.sum(axis=0).tolist() == [120, 15, 15]
    assert (counts.sum(axis=1) == 3).all()
    assert (np.abs(counts - exact / 1_000_000) < 1).all()


def test_assignment_is_a_seeded_permutation() -> None:
    """Unstratified: the seed's permutation; its first rows go to the first split."""
    names, warning = assign_splits(10, {"train": 0.7, "test": 0.3}, seed=4)
    order = np.random.default_rng(4).permutation(10)
    expected = np.empty(10, dtype=object)
    expected[order[:7]], expected[order[7:]] = "train", "test"
    assert names.tolist() == expected.tolist() and warning is None
    again, _ = assign_splits(10, {"train": 0.7, "test": 0.3}, seed=4)
    other, _ = assign_splits(10, {"train": 0.7, "test": 0.3}, seed=5)
    assert again.tolist() == names.tolist() and other.tolist() != names.tolist()
    counts = np.array([[2, 1], [1, 1]])
    codes = codes_by_class(counts, seed=0)
    assert codes[:3].tolist().count(0) == 2 and codes[3:].tolist().count(1) == 1


def test_stratified_assignment_keeps_each_class_in_proportion() -> None:
    labels = np.repeat(np.arange(50), 3)
    names, warning = assign_splits(150, {"train": 0.8, "valid": 0.1, "test": 0.1}, 0, labels)
    assert {n: int((names == n).sum()) for n in ("train", "valid", "test")} == {
        "train": 120,
        "valid": 15,
        "test": 15,
    }
    for label in range(50):
        mine = names[labels == label]
        assert (mine == "train").sum() in (2, 3)
    assert warning is not None and "50 of 50 class(es) are too small" in warning


def _classes_csv(path: Path, classes: int, per_class: int) -> Path:
    rows = [f"{c * per_class + i},{c}" for c in range(classes) for i in range(per_class)]
    path.write_text("x,y\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("classes", "per_class", "split", "expected"),
    [
        (50, 3, "train=0.8,valid=0.1,test=0.1", {"train": 120, "valid": 15, "test": 15}),
        (100, 1, "train=0.8,test=0.2", {"train": 80, "test": 20}),
    ],
)
def test_stratified_import_warns_and_meets_proportions(
    workspace: Workspace,
    tmp_path: Path,
    classes: int,
    per_class: int,
    split: str,
    expected: dict[str, int],
) -> None:
    source = _classes_csv(tmp_path / "c.csv", classes, per_class)
    with pytest.warns(SplitWarning, match="too small to have a row in every split"):
        ds = hone.data.import_dataset(
            "c", source, label="y", split=split, stratify=True, workspace=workspace
        )
    assert ds.splits == expected
    assert "too small" in ds.summary["warnings"][0]
    with pytest.warns(SplitWarning):
        again = hone.data.import_dataset(
            "c", source, label="y", split=split, stratify=True, workspace=workspace
        )
    assert again.id == ds.id  # deterministic


def test_no_warning_when_every_class_reaches_every_split(
    workspace: Workspace, tmp_path: Path
) -> None:
    source = _classes_csv(tmp_path / "c.csv", 4, 10)
    ds = hone.data.import_dataset(
        "c", source, label="y", split="train=0.8,test=0.2", stratify=True, workspace=workspace
    )  # pytest turns any warning into an error
    assert ds.splits == {"train": 32, "test": 8} and "warnings" not in ds.summary


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"train": "0.5", "test": 0.5}, "'0.5' is not a number"),
        ({"train": True}, "True is not a number"),
        ({"train": 0.5, 3: 0.5}, "split name 3"),
        (0.5, "give a text spec"),
        ({"train": 0.9999995, "test": 0.0000005}, "below 0.000001"),
    ],
)
def test_bad_split_specs(spec: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        allocate([10], list(parse_split_spec(spec).values()))  # type: ignore[arg-type]
