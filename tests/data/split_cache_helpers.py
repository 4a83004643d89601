"""Helpers of the split cache's tests: where a split's file is, and a split's batches read
through the cache or the old way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import hone.data
from hone.data.dataset import DatasetVersion
from hone.data.split_cache import SplitKey, cache_folder

COLUMNS = ("features", "label")


def cache_file(version: DatasetVersion, split: str | None) -> Path:
    assert version.home is not None
    return cache_folder(version.home) / f"{SplitKey(version.id, split, COLUMNS).stem}.arrow"


def batches(version: DatasetVersion, split: str = "train") -> list[tuple[np.ndarray, np.ndarray]]:
    loader = hone.data.loader(version, split, 100, seed=3)
    return [(x.numpy(), y.numpy()) for x, y in loader]


def same(a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    if len(a) != len(b):
        return False
    pairs = zip(a, b, strict=True)
    return all(np.array_equal(xa, xb) and np.array_equal(ya, yb) for (xa, ya), (xb, yb) in pairs)


def expected(version: DatasetVersion, split: str | None) -> tuple[np.ndarray, np.ndarray]:
    """What the split holds, read the old way (every chunk decoded in this process)."""
    x, y = version.to_numpy(split, raw=True, verify=True)
    assert y is not None
    return x, y
