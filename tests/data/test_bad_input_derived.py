"""A corpus of bad input for derived versions, references, export and the loader (issue 6,
fault 16): every case is refused with a one-line HoneError naming the problem, and writes
no blob and no dataset row. Keep it growing: add rows to DERIVED.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hone
import hone.data
from hone.config import Workspace
from hone.errors import ConflictError, HoneError, NotFoundError, UserError, ValidationError
from tests.data.test_bad_input_data import stored


@pytest.fixture
def base(workspace: Workspace, tmp_path: Path) -> hone.data.DatasetVersion:
    source = tmp_path / "base.csv"
    source.write_text("a,b,y\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(20)))
    return hone.data.import_dataset(
        "base", source, label="y", split="train=0.5,test=0.5", workspace=workspace
    )


def _ids(version: hone.data.DatasetVersion) -> list[int]:
    return list(version.to_arrow().column("__sample_id").to_pylist())


def _written(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp / name


Call = Callable[[hone.data.DatasetVersion, Path, Workspace], object]


def _append(text: str, **kwargs: Any) -> Call:
    def call(v: hone.data.DatasetVersion, tmp: Path, ws: Workspace) -> object:
        return hone.data.append(v, _written(tmp, "more.csv", text), **kwargs)

    return call


def _append_npz(**arrays: Any) -> Call:
    def call(v: hone.data.DatasetVersion, tmp: Path, ws: Workspace) -> object:
        np.savez(tmp / "more.npz", **arrays)
        return hone.data.append(v, tmp / "more.npz")

    return call


def _first_id(v: hone.data.DatasetVersion) -> int:
    return _ids(v)[0]


DERIVED: list[tuple[str, Call, type[HoneError], str]] = [
    ("append a column short", _append("a,y\n1,0\n"), ValidationError, "no feature column(s) b"),
    ("append text labels", _append("a,b,y\n1,2,x\n"), ValidationError, "labels are object"),
    ("append float into int", _append("a,b,y\n1.5,2,0\n"), ValidationError, "are float64, but"),
    ("append no labels", _append_npz(x=np.ones((2, 2))), ValidationError, "both have labels"),
    ("append narrow npz", _append_npz(x=np.ones((2, 3)), y=np.ones(2)), ValidationError, "3 f"),
    ("append empty", _append("a,b,y\n"), ValidationError, "holds no rows"),
    ("append empty label", _append("a,b,y\n1,2,\n"), ValidationError, "label column 'y'"),
    ("append bad seed", _append("a,b,y\n9,9,0\n", seed=-2), ValidationError, "seed -2"),
    ("append bad split", _append("a,b,y\n9,9,0\n", split={"t": "x"}), ValidationError, "number"),
    (
        "append missing",
        lambda v, tmp, ws: hone.data.append(v, tmp / "missing.csv"),
        NotFoundError,
        "no file",
    ),
    (
        "relabel unknown id",
        lambda v, tmp, ws: hone.data.relabel(v, {12345: 1}),
        NotFoundError,
        "not in base@",
    ),
    (
        "relabel text id",
        lambda v, tmp, ws: hone.data.relabel(v, {"abc": 1}),  # type: ignore[dict-item]
        ValidationError,
        "sample id 'abc'",
    ),
    (
        "relabel float id",
        lambda v, tmp, ws: hone.data.relabel(v, {1.5: 1}),  # type: ignore[dict-item]
        ValidationError,
        "sample id 1.5",
    ),
    (
        "relabel text label",
        lambda v, tmp, ws: hone.data.relabel(v, {_first_id(v): "x"}),
        ValidationError,
        "holds int64",
    ),
    ("relabel nothing", lambda v, tmp, ws: hone.data.relabel(v, {}), ValidationError, "at least"),
    (
        "relabel a list",
        lambda v, tmp, ws: hone.data.relabel(v, [1, 2]),  # type: ignore[arg-type]
        ValidationError,
        "sample id → label",
    ),
    ("filter no condition", lambda v, tmp, ws: hone.data.filter(v), ValidationError, "needs a"),
    (
        "filter unknown split",
        lambda v, tmp, ws: hone.data.filter(v, splits=["valid"]),
        ValidationError,
        "no split",
    ),
    (
        "filter keeps nothing",
        lambda v, tmp, ws: hone.data.filter(v, labels=[7]),
        ValidationError,
        "keeps no row",
    ),
    (
        "filter text ids",
        lambda v, tmp, ws: hone.data.filter(v, sample_ids=["x"]),  # type: ignore[list-item]
        ValidationError,
        "sample id 'x'",
    ),
    (
        "filter drop None",
        lambda v, tmp, ws: hone.data.filter(v, drop_sample_ids=[None]),  # type: ignore[list-item]
        ValidationError,
        "sample id None",
    ),
    ("resplit bad spec", lambda v, tmp, ws: hone.data.resplit(v, "a=0.7"), ValidationError, "sum"),
    (
        "resplit bad seed",
        lambda v, tmp, ws: hone.data.resplit(v, "a=1", seed=-1),
        ValidationError,
        "seed -1",
    ),
    (
        "normalize method",
        lambda v, tmp, ws: hone.data.normalize(v, method="zscore"),
        ValidationError,
        "normalize method",
    ),
    (
        "normalize fit split",
        lambda v, tmp, ws: hone.data.normalize(v, fit_split="valid"),
        ValidationError,
        "no split 'valid'",
    ),
    (
        "export format",
        lambda v, tmp, ws: hone.data.export(v, tmp / "x.bin"),
        ValidationError,
        "export format",
    ),
    (
        "export into a folder",
        lambda v, tmp, ws: hone.data.export(v, tmp),
        ValidationError,
        "folder",
    ),
    (
        "export nowhere",
        lambda v, tmp, ws: hone.data.export(v, tmp / "no" / "x.csv"),
        ValidationError,
        "cannot write",
    ),
    (
        "export unknown split",
        lambda v, tmp, ws: hone.data.export(v, tmp / "x.csv", split="valid"),
        ValidationError,
        "no split",
    ),
    ("to_numpy unknown split", lambda v, tmp, ws: v.to_numpy("valid"), ValidationError, "valid"),
    (
        "diff with a string",
        lambda v, tmp, ws: hone.data.diff(v, "base@latest"),  # type: ignore[arg-type]
        ValidationError,
        "two dataset versions",
    ),
    ("get unknown", lambda v, tmp, ws: hone.data.get("nope", workspace=ws), NotFoundError, "nope"),
    (
        "get bad prefix",
        lambda v, tmp, ws: hone.data.get("base@zz", workspace=ws),
        ValidationError,
        "'latest' or hex",
    ),
    (
        "get unknown prefix",
        lambda v, tmp, ws: hone.data.get("base@" + "0" * 40, workspace=ws),
        NotFoundError,
        "no version",
    ),
    (
        "get no name",
        lambda v, tmp, ws: hone.data.get("@abc", workspace=ws),
        ValidationError,
        "dataset name",
    ),
    (
        "get two ats",
        lambda v, tmp, ws: hone.data.get("base@latest@x", workspace=ws),
        ValidationError,
        "'latest' or hex",
    ),
    (
        "get not text",
        lambda v, tmp, ws: hone.data.get(5, workspace=ws),  # type: ignore[arg-type]
        ValidationError,
        "a reference",
    ),
    (
        "versions unknown",
        lambda v, tmp, ws: hone.data.versions("nope", workspace=ws),
        NotFoundError,
        "no dataset",
    ),
]


def _npz_file(tmp: Path, **arrays: Any) -> Path:
    np.savez(tmp / "n.npz", **arrays)
    return tmp / "n.npz"


@pytest.mark.parametrize(("case", "call", "error", "message"), DERIVED, ids=[c[0] for c in DERIVED])
def test_bad_derivation_is_refused_and_writes_nothing(
    workspace: Workspace,
    base: hone.data.DatasetVersion,
    tmp_path: Path,
    case: str,
    call: Call,
    error: type[HoneError],
    message: str,
) -> None:
    before = stored(workspace)
    with pytest.raises(error) as raised:
        call(base, tmp_path, workspace)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert stored(workspace) == before


def test_stratified_resplit_needs_labels(workspace: Workspace, tmp_path: Path) -> None:
    source = _written(tmp_path, "u.csv", "a,b\n1,2\n3,4\n")
    unlabeled = hone.data.import_dataset("u", source, workspace=workspace)
    before = stored(workspace)
    with pytest.raises(ValidationError, match="stratify needs labels"):
        hone.data.resplit(unlabeled, "a=0.5,b=0.5", stratify=True)
    with pytest.raises(ValidationError, match="no labels to change"):
        hone.data.relabel(unlabeled, {_ids(unlabeled)[0]: 1})
    with pytest.raises(ValidationError, match="no labels to filter on"):
        hone.data.filter(unlabeled, labels=[1])
    assert stored(workspace) == before


def test_append_of_rows_already_there_is_a_conflict(workspace: Workspace, tmp_path: Path) -> None:
    source = _written(tmp_path, "s.csv", "a,y\n1,0\n2,1\n")
    first = hone.data.import_dataset("c", source, label="y", split="t=1", workspace=workspace)
    more = _written(tmp_path, "m.csv", "a,y\n3,0\n")
    bigger = hone.data.append(first, more)
    before = stored(workspace)
    with pytest.raises(ConflictError, match="already in"):
        hone.data.append(bigger, more)
    assert stored(workspace) == before


@pytest.mark.parametrize(
    ("environment", "kwargs", "message"),
    [
        ({"RANK": "abc"}, {}, "RANK='abc' in the environment is not an integer"),
        ({"WORLD_SIZE": "0"}, {}, "world_size 0"),
        ({"WORLD_SIZE": "-2"}, {}, "world_size -2"),
        ({"WORLD_SIZE": "x"}, {}, "WORLD_SIZE='x'"),
        ({"RANK": "5", "WORLD_SIZE": "2"}, {}, r"rank 5 is not in \[0, world_size=2\)"),
        ({}, {"batch_size": 0}, "batch_size must be an integer of at least 1"),
        ({}, {"batch_size": "8"}, "batch_size must be an integer"),
        ({}, {"seed": -1}, "seed -1"),
        ({}, {"rank": "0", "world_size": 1}, "rank '0': give an integer"),
    ],
)
def test_bad_loader_settings(
    workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    pytest.importorskip("torch")
    ds = hone.data.import_dataset("l", "sklearn:iris", split="train=1", workspace=workspace)
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match=message):
        hone.data.loader(ds, "train", **kwargs)


def test_bad_epoch(workspace: Workspace) -> None:
    pytest.importorskip("torch")
    ds = hone.data.import_dataset("l", "sklearn:iris", split="train=1", workspace=workspace)
    batches = hone.data.loader(ds, "train", 16)
    with pytest.raises(ValidationError, match="epoch -1"):
        batches.set_epoch(-1)
