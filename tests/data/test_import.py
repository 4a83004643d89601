"""Importing datasets: every source format, content-addressed versions, and bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hone
import hone.data
from hone.config import Workspace
from hone.errors import NotFoundError, UserError, ValidationError


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_round_trip(workspace: Workspace, tmp_path: Path) -> None:
    source = _csv(tmp_path / "d.csv", "a,b,label\n1,2.5,x\n3,4.5,y\n5,6.5,x\n7,8.5,y\n")
    ds = hone.data.import_dataset("toy", source, label="label", workspace=workspace)
    x, y = ds.to_numpy()
    assert x.tolist() == [[1, 2.5], [3, 4.5], [5, 6.5], [7, 8.5]]
    assert y is not None and y.tolist() == ["x", "y", "x", "y"]
    assert ds.splits == {"all": 4}
    assert ds.summary["schema"]["features"]["names"] == ["a", "b"]
    assert ds.summary["schema"]["classes"] == ["x", "y"]
    table = ds.to_arrow()
    assert table.column_names == ["__sample_id", "__split", "features", "label"]
    assert len(set(table.column("__sample_id").to_pylist())) == 4


def test_parquet_npz_and_bundled_sources(workspace: Workspace, tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"f1": [1.0, 2.0], "f2": [3.0, 4.0], "t": [0, 1]}), tmp_path / "d.parquet"
    )
    ds = hone.data.import_dataset("pq", tmp_path / "d.parquet", label="t", workspace=workspace)
    assert ds.to_numpy()[0].tolist() == [[1.0, 3.0], [2.0, 4.0]]
    images = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    np.savez(tmp_path / "d.npz", x=images, y=np.array([0, 1, 0, 1, 0]))
    ds = hone.data.import_dataset("npz", tmp_path / "d.npz", workspace=workspace)
    x, y = ds.to_numpy()
    assert x.shape == (5, 2, 3) and x.dtype == np.float32 and np.array_equal(x, images)
    assert y is not None and y.tolist() == [0, 1, 0, 1, 0]
    for name, rows in (("iris", 150), ("wine", 178), ("breast_cancer", 569), ("digits", 1797)):
        assert hone.data.import_dataset(name, f"sklearn:{name}", workspace=workspace).rows == rows


def test_identical_content_is_the_same_version(workspace: Workspace, tmp_path: Path) -> None:
    source = _csv(tmp_path / "a.csv", "x,y\n1,0\n2,1\n3,0\n4,1\n")
    first = hone.data.import_dataset(
        "d", source, label="y", split="train=0.5,test=0.5", workspace=workspace
    )
    moved = tmp_path / "elsewhere.csv"
    shutil.copy(source, moved)
    again = hone.data.import_dataset(
        "d", moved, label="y", split="train=0.5,test=0.5", workspace=workspace
    )
    assert again.id == first.id
    assert [v.id for v in hone.data.versions("d", workspace=workspace)] == [first.id]
    other_seed = hone.data.import_dataset(
        "d", source, label="y", split="train=0.5,test=0.5", seed=7, workspace=workspace
    )
    assert other_seed.id != first.id
    assert hone.data.get("d", workspace=workspace).id == other_seed.id  # the newest
    (info,) = hone.data.list_datasets(workspace=workspace)
    assert info.name == "d" and info.versions == 2 and info.latest.id == other_seed.id


def test_stratified_splits_keep_class_proportions(workspace: Workspace) -> None:
    ds = hone.data.import_dataset(
        "iris",
        "sklearn:iris",
        split="train=0.8,test=0.2",
        stratify=True,
        seed=3,
        workspace=workspace,
    )
    assert ds.splits == {"train": 120, "test": 30}
    assert ds.summary["labels"]["test"] == {"0": 10, "1": 10, "2": 10}
    x_train, y_train = ds.to_numpy(split="train")
    x_test, _ = ds.to_numpy(split="test")
    assert x_train.shape == (120, 4) and x_test.shape == (30, 4)
    assert y_train is not None and np.bincount(y_train).tolist() == [40, 40, 40]
    train_ids = set(ds.to_arrow("train").column("__sample_id").to_pylist())
    test_ids = set(ds.to_arrow("test").column("__sample_id").to_pylist())
    assert not train_ids & test_ids
    with pytest.raises(ValidationError, match="no split 'valid'"):
        ds.to_numpy(split="valid")


def test_sample_ids_are_stable_across_imports(workspace: Workspace) -> None:
    one = hone.data.import_dataset("a", "sklearn:wine", workspace=workspace)
    two = hone.data.import_dataset(
        "b", "sklearn:wine", split="train=0.5,test=0.5", workspace=workspace
    )
    ids_one = one.to_arrow().column("__sample_id").to_pylist()
    ids_two = two.to_arrow().column("__sample_id").to_pylist()
    assert ids_one == ids_two and len(set(ids_one)) == 178


def test_references(workspace: Workspace, tmp_path: Path) -> None:
    versions = []
    for i in range(17):  # more versions than hex digits: two share a first digit
        source = _csv(tmp_path / f"{i}.csv", f"x,y\n{i},0\n{i + 1},1\n")
        versions.append(hone.data.import_dataset("r", source, label="y", workspace=workspace))
    first = versions[0]
    assert hone.data.get(f"r@{first.id[:10]}", workspace=workspace).id == first.id
    assert hone.data.get("r@latest", workspace=workspace).id == versions[-1].id
    firsts = [v.id[0] for v in versions]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(UserError, match="ambiguous"):
        hone.data.get(f"r@{shared}", workspace=workspace)
    unused = next(
        c for c in "0123456789abcdef" if not any(v.id.startswith(c * 8) for v in versions)
    )
    with pytest.raises(NotFoundError, match="no version"):
        hone.data.get(f"r@{unused * 8}", workspace=workspace)
    with pytest.raises(NotFoundError, match="no dataset 'nope'"):
        hone.data.get("nope", workspace=workspace)
    with pytest.raises(ValidationError, match="'latest' or hex digits"):
        hone.data.get("r@v1", workspace=workspace)
    with pytest.raises(ValidationError, match="dataset name"):
        hone.data.get("bad name", workspace=workspace)


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("a,b\n1,2\n3\n", {}, "Expected 2 columns"),
        ("a,b\n1,2\nx,3\n", {}, "'a' is string, not numeric"),
        ("a,b\n1,2\n", {"label": "c"}, "no label column 'c'; columns are a, b"),
        ("a,b\n1,2\n", {"features": ["z"]}, "no feature column"),
        ("a,b\n", {}, "holds no rows"),
        ("a,b\n1,\n2,3\n", {"label": "b"}, "label column 'b' has 1 empty"),
        ("a,b\n1,2\n", {"split": "train=0.7,test=0.2"}, "must sum to 1"),
        ("a,b\n1,2\n", {"split": "train=0.7,test"}, "expected NAME=FRACTION"),
        ("a,b\n1,2\n", {"stratify": True}, "--stratify needs a label"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    workspace: Workspace, tmp_path: Path, text: str, kwargs: dict[str, object], message: str
) -> None:
    source = _csv(tmp_path / "bad.csv", text)
    with pytest.raises(ValidationError, match=message):
        hone.data.import_dataset("bad", source, workspace=workspace, **kwargs)  # type: ignore[arg-type]
    assert hone.data.list_datasets(workspace=workspace) == []


def test_missing_and_unreadable_sources(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no file"):
        hone.data.import_dataset("m", tmp_path / "missing.csv", workspace=workspace)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValidationError, match="not a readable Parquet file"):
        hone.data.import_dataset("m", tmp_path / "broken.parquet", workspace=workspace)
    np.savez(tmp_path / "noX.npz", features=np.zeros((2, 2)))
    with pytest.raises(ValidationError, match="holds an array 'x'"):
        hone.data.import_dataset("m", tmp_path / "noX.npz", workspace=workspace)
    with pytest.raises(ValidationError, match="not a bundled set"):
        hone.data.import_dataset("m", "sklearn:mnist", workspace=workspace)
    with pytest.raises(ValidationError, match="unknown format"):
        hone.data.import_dataset("m", _csv(tmp_path / "d.xlsx", "x"), workspace=workspace)


def test_non_finite_values_are_reported_and_kept_only_on_request(
    workspace: Workspace, tmp_path: Path
) -> None:
    source = _csv(tmp_path / "nan.csv", "a,b,y\n1,nan,0\ninf,2,1\n3,4,0\n")
    with pytest.raises(ValidationError, match=r"1 NaN and 1 infinite value\(s\), in a, b"):
        hone.data.import_dataset("n", source, label="y", workspace=workspace)
    ds = hone.data.import_dataset("n", source, label="y", allow_nonfinite=True, workspace=workspace)
    assert ds.summary["nonfinite"] == {"nan": 1, "inf": 1}
    assert ds.summary["features"]["a"]["max"] == 3.0  # statistics over finite values


def test_duplicate_rows_are_reported(workspace: Workspace, tmp_path: Path) -> None:
    source = _csv(tmp_path / "dup.csv", "a,y\n1,0\n1,0\n1,1\n2,0\n2,0\n")
    ds = hone.data.import_dataset("dup", source, label="y", workspace=workspace)
    assert ds.summary["duplicates"] == 2 and ds.rows == 5


IMPORTER = """
import sys, hone.data
v = hone.data.import_dataset("shared", "sklearn:wine", split=sys.argv[1])
print(v.id)
"""


@pytest.mark.slow
def test_two_processes_importing_one_name(workspace: Workspace) -> None:
    import os

    env = {**os.environ, "HONE_HOME": str(workspace.home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", IMPORTER, spec],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for spec in ("train=0.5,test=0.5", "train=0.9,test=0.1")
    ]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        ids.append(out.strip())
    found = {v.id for v in hone.data.versions("shared", workspace=workspace)}
    assert found == set(ids) and len(found) == 2
    for version_id in ids:
        x, _ = hone.data.get(f"shared@{version_id}", workspace=workspace).to_numpy()
        assert x.shape == (178, 13)
