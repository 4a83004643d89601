"""Derived versions (append, relabel, filter, resplit, normalize), diff, history, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import hone
import hone.data
from hone.config import Workspace
from hone.data.manifest import SAMPLE_ID
from hone.errors import ConflictError, NotFoundError, ValidationError


@pytest.fixture
def wine(workspace: Workspace) -> hone.data.DatasetVersion:
    return hone.data.import_dataset(
        "wine", "sklearn:wine", split="train=0.8,test=0.2", stratify=True, workspace=workspace
    )


def _ids(version: hone.data.DatasetVersion) -> list[int]:
    return list(version.to_arrow().column(SAMPLE_ID).to_pylist())


def test_append_stores_only_new_rows_and_keeps_old_splits(
    wine: hone.data.DatasetVersion, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "more.npz", x=rng.normal(size=(40, 13)), y=rng.integers(0, 3, 40))
    bigger = hone.data.append(wine, tmp_path / "more.npz")
    assert bigger.rows == 218 and bigger.row.parents == (wine.id,)
    assert bigger.manifest.chunks[: len(wine.manifest.chunks)] == wine.manifest.chunks
    old_split = dict(zip(_ids(wine), wine.to_arrow().column("__split").to_pylist(), strict=True))
    new_table = bigger.to_arrow()
    for sid, split in zip(
        new_table.column(SAMPLE_ID).to_pylist(),
        new_table.column("__split").to_pylist(),
        strict=True,
    ):
        if sid in old_split:
            assert old_split[sid] == split  # no sample changes split
    # Merged statistics equal statistics computed from scratch.
    recomputed = hone.data.resplit(bigger, "all")
    for name, stats in bigger.summary["features"].items():
        for key in ("mean", "std", "min", "max", "count"):
            assert stats[key] == pytest.approx(recomputed.summary["features"][name][key])
    with pytest.raises(ConflictError, match="already in"):
        hone.data.append(bigger, tmp_path / "more.npz")
    np.savez(tmp_path / "narrow.npz", x=np.zeros((2, 3)), y=np.zeros(2, dtype=int))
    with pytest.raises(ValidationError, match="3 feature values per row"):
        hone.data.append(wine, tmp_path / "narrow.npz")


def test_relabel_filter_resplit(wine: hone.data.DatasetVersion) -> None:
    ids = _ids(wine)
    fixed = hone.data.relabel(wine, {ids[0]: 2, ids[1]: 2})
    _, y = fixed.to_numpy()
    assert y is not None and y[0] == 2 and y[1] == 2 and fixed.rows == wine.rows
    assert fixed.summary["lineage"] == {"op": "relabel", "params": {"count": 2, "changed": 2}}
    with pytest.raises(NotFoundError, match="1 sample id"):
        hone.data.relabel(wine, {12345: 1})
    only_two = hone.data.filter(wine, labels=[0, 1], splits=["train"])
    assert set(only_two.splits) == {"train"}
    assert set(np.unique(only_two.to_numpy()[1])) == {0, 1}  # type: ignore[arg-type]
    dropped = hone.data.filter(wine, drop_sample_ids=ids[:10])
    assert dropped.rows == wine.rows - 10 and not set(ids[:10]) & set(_ids(dropped))
    with pytest.raises(ValidationError, match="keeps no row"):
        hone.data.filter(wine, sample_ids=[1])
    with pytest.raises(ValidationError, match="needs a condition"):
        hone.data.filter(wine)
    halves = hone.data.resplit(wine, "train=0.5,test=0.5", stratify=True, seed=1)
    assert sum(halves.splits.values()) == 178
    assert abs(halves.splits["train"] - halves.splits["test"]) <= 3  # stratified halves
    assert sorted(_ids(halves)) == sorted(ids)


def test_normalize_fits_on_train_only_and_writes_no_rows(
    wine: hone.data.DatasetVersion,
) -> None:
    normalized = hone.data.normalize(wine)
    assert normalized.manifest.chunks == wine.manifest.chunks  # the same bytes, shared
    (step,) = normalized.manifest.transforms
    x_train_raw, _ = wine.to_numpy("train")
    assert step["op"] == "standardize" and step["fitted_on"] == "train"
    assert step["shift"] == pytest.approx(x_train_raw.mean(axis=0).tolist())
    x_train, _ = normalized.to_numpy("train")
    assert np.abs(x_train.mean(axis=0)).max() < 1e-9
    assert np.allclose(x_train.std(axis=0), 1.0)
    raw, _ = normalized.to_numpy("train", raw=True)
    assert np.array_equal(raw, x_train_raw)
    minmax = hone.data.normalize(wine, method="minmax")
    x, _ = minmax.to_numpy("train")
    assert x.min() == pytest.approx(0.0) and x.max() == pytest.approx(1.0)
    with pytest.raises(ValidationError, match="no split 'fit'"):
        hone.data.normalize(wine, fit_split="fit")
    with pytest.raises(ValidationError, match="'standard' or 'minmax'"):
        hone.data.normalize(wine, method="zscore")


def test_diff_and_history(wine: hone.data.DatasetVersion, workspace: Workspace) -> None:
    ids = _ids(wine)
    relabeled = hone.data.relabel(wine, {ids[0]: 0 if wine.to_numpy()[1][0] else 1})  # type: ignore[index]
    trimmed = hone.data.filter(relabeled, drop_sample_ids=ids[1:4])
    normalized = hone.data.normalize(trimmed)
    result = hone.data.diff(wine, trimmed)
    assert sum(result.removed.values()) == 3 and sum(result.relabeled.values()) == 1
    assert not result.added and not result.moved and not result.transforms_changed
    assert hone.data.diff(trimmed, normalized).transforms_changed
    tree = hone.data.history(hone.data.versions("wine", workspace=workspace))
    assert [(depth, v.id) for depth, v in tree] == [
        (0, wine.id),
        (1, relabeled.id),
        (2, trimmed.id),
        (3, normalized.id),
    ]


def test_export_formats(
    wine: hone.data.DatasetVersion, tmp_path: Path, workspace: Workspace
) -> None:
    x, y = wine.to_numpy()
    parquet = hone.data.export(wine, tmp_path / "w.parquet")
    table = pq.read_table(parquet)
    assert table.num_rows == 178 and "alcohol" in table.column_names
    assert table.column("sample_id").to_pylist() == _ids(wine)
    hone.data.export(wine, tmp_path / "w.csv", split="test")
    assert len((tmp_path / "w.csv").read_text().splitlines()) == 1 + wine.splits["test"]
    hone.data.export(hone.data.normalize(wine), tmp_path / "w.npz", transformed=True)
    with np.load(tmp_path / "w.npz") as data:
        assert y is not None and data["x"].shape == x.shape
        assert np.array_equal(data["y"], y)
        assert not np.allclose(data["x"], x)
    with pytest.raises(ValidationError, match="export format"):
        hone.data.export(wine, tmp_path / "w.xlsx")
    # The exported file imports back as the same rows.
    again = hone.data.import_dataset(
        "wine-copy",
        tmp_path / "w.parquet",
        label="target",
        features=list(wine.manifest.feature_names),
        workspace=workspace,
    )
    assert np.array_equal(again.to_numpy()[0], x)
