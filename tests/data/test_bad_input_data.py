"""A corpus of bad input for the sample library (issue 6, fault 16): every case is refused
with a one-line HoneError that names the problem, and writes no blob and no dataset row.

Keep it growing: a new way to break an import, a derived version or a reference belongs
in one of the tables below. The CLI cases live in tests/cli/test_data_cli.py's corpus.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from sqlalchemy import func, select

import hone
import hone.data
from hone.blobs import open_blob_store
from hone.config import Workspace
from hone.data import importers
from hone.errors import ConflictError, HoneError, NotFoundError, UserError, ValidationError
from hone.store.database import database_for
from hone.store.schema import dataset_versions, datasets

Maker = Callable[[Path], dict[str, Any]]


def stored(ws: Workspace) -> tuple[set[str], int, int]:
    """What the workspace holds: blob digests, dataset rows, version rows."""
    db = database_for(ws.store_uri)
    with db.read() as conn:
        names = conn.execute(select(func.count()).select_from(datasets)).scalar_one()
        rows = conn.execute(select(func.count()).select_from(dataset_versions)).scalar_one()
    return set(open_blob_store(ws.blob_uri).digests()), names, rows


@pytest.fixture
def unchanged(workspace: Workspace) -> Iterator[Callable[[], None]]:
    """Call it after a refusal: asserts the workspace gained nothing since the test began
    (after any setup the test did before taking this fixture's snapshot)."""
    state: dict[str, tuple[set[str], int, int]] = {}

    def check() -> None:
        assert stored(workspace) == state["before"]

    state["before"] = stored(workspace)
    yield check


def _csv(text: str | bytes, name: str = "d.csv") -> Maker:
    def make(tmp: Path) -> dict[str, Any]:
        path = tmp / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return {"source": path}

    return make


def _parquet(table: pa.Table, **kwargs: Any) -> Maker:
    def make(tmp: Path) -> dict[str, Any]:
        pq.write_table(table, tmp / "d.parquet")
        return {"source": tmp / "d.parquet", **kwargs}

    return make


def _npz(**arrays: Any) -> Maker:
    def make(tmp: Path) -> dict[str, Any]:
        np.savez(tmp / "d.npz", **arrays)
        return {"source": tmp / "d.npz"}

    return make


def _file(name: str, data: bytes) -> Maker:
    def make(tmp: Path) -> dict[str, Any]:
        (tmp / name).write_bytes(data)
        return {"source": tmp / name}

    return make


def _npy_as_npz(tmp: Path) -> dict[str, Any]:
    np.save(tmp / "a.npy", np.zeros((3, 2)))
    (tmp / "a.npy").rename(tmp / "a.npz")
    return {"source": tmp / "a.npz"}


def _images(sizes: dict[str, list[tuple[int, int]]], data: bytes | None = None) -> Maker:
    def make(tmp: Path) -> dict[str, Any]:
        root = tmp / "imgs"
        for label, shapes in sizes.items():
            (root / label).mkdir(parents=True)
            for i, (w, h) in enumerate(shapes):
                Image.new("RGB", (w, h)).save(root / label / f"{i}.png")
        if data is not None:
            (root / "a" / "broken.png").write_bytes(data)
        return {"source": root}

    return make


def _sixteen_bit(tmp: Path) -> dict[str, Any]:
    (tmp / "deep" / "a").mkdir(parents=True)
    pixels = (np.arange(16, dtype=np.uint16) * 4000).reshape(4, 4)
    Image.fromarray(pixels).save(tmp / "deep" / "a" / "0.png")
    return {"source": tmp / "deep"}


def _with(make: Maker, **kwargs: Any) -> Maker:
    return lambda tmp: {**make(tmp), **kwargs}


GOOD = _csv("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
LATIN1 = "caf\xe9".encode("latin-1")
LABELS = {
    "date": pa.array([datetime.date(2020, 1, i + 1) for i in range(4)]),
    "timestamp": pa.array([datetime.datetime(2020, 1, 1, i) for i in range(4)]),
    "binary": pa.array([b"a", b"b", b"a", b"b"]),
    "list": pa.array([[1], [2], [1], [2]]),
    "struct": pa.array([{"k": 1}, {"k": 2}, {"k": 1}, {"k": 2}]),
    "decimal": pa.array([Decimal("1.5")] * 4),
    "duration": pa.array([datetime.timedelta(seconds=i) for i in range(4)]),
}

IMPORTS: list[tuple[str, Maker, type[HoneError], str]] = [
    ("duplicate columns", _csv("a,a,y\n1,2,0\n3,4,1\n"), ValidationError, "'a' appear more"),
    (
        "latin-1 label values",
        _with(_csv(b"a,y\n1," + LATIN1 + b"\n2,b\n"), label="y"),
        ValidationError,
        "not UTF-8 text",
    ),
    ("latin-1 feature values", _csv(b"a,b\n1," + LATIN1 + b"\n"), ValidationError, "binary"),
    ("latin-1 header", _csv(b"a," + LATIN1 + b"\n1,2\n"), ValidationError, "not UTF-8 text"),
    (
        "bool column with an empty cell",
        _csv("a,b,y\n1,true,0\n2,,1\n3,false,0\n"),
        ValidationError,
        "in b (empty cells count as NaN)",
    ),
    ("empty label cell", _with(_csv("a,b\n1,\n2,3\n"), label="b"), ValidationError, "1 empty"),
    ("empty file", _csv(""), ValidationError, "holds no rows: the file is empty"),
    ("header only", _csv("a,b\n"), ValidationError, "holds no rows"),
    ("ragged rows", _csv("a,b\n1,2\n3\n"), ValidationError, "Expected 2 columns"),
    ("all-empty feature", _csv("a,b\n1,\n2,\n"), ValidationError, "'b' is empty"),
    ("text late in a number column", _csv("a\n" + "1\n" * 5000 + "x\n"), ValidationError, "'a'"),
    ("NaN and inf", _csv("a,b\n1,nan\ninf,2\n"), ValidationError, "1 NaN and 1 infinite"),
    ("unknown suffix", _file("d.xlsx", b"x"), ValidationError, "unknown format '.xlsx'"),
    ("corrupt parquet", _file("d.parquet", b"PAR1 nope"), ValidationError, "not a readable"),
    (".npy renamed .npz", _npy_as_npz, ValidationError, "a single .npy array renamed"),
    ("garbage .npz", _file("d.npz", b"\x00" * 64), ValidationError, "not an .npz archive"),
    ("npz without x", _npz(features=np.zeros((2, 2))), ValidationError, "holds an array 'x'"),
    ("complex x", _npz(x=np.ones((3, 2), complex)), ValidationError, "complex128, not numeric"),
    ("text x", _npz(x=np.array([["a"], ["b"]])), ValidationError, "<U1, not numeric"),
    ("0-d x", _npz(x=np.array(1.0)), ValidationError, "must have a row axis"),
    ("x with 0 columns", _npz(x=np.ones((3, 0))), ValidationError, "no feature values per row"),
    ("x with 0 rows", _npz(x=np.ones((0, 2))), ValidationError, "holds no rows"),
    ("0-d y", _npz(x=np.ones((3, 2)), y=np.array(1)), ValidationError, "have shape ()"),
    ("2-D y", _npz(x=np.ones((3, 2)), y=np.ones((3, 2))), ValidationError, "shape (3, 2)"),
    ("short y", _npz(x=np.ones((3, 2)), y=np.ones(2)), ValidationError, "the labels have 2"),
    ("complex y", _npz(x=np.ones((2, 2)), y=np.ones(2, complex)), ValidationError, "complex"),
    (
        "surrogate y",
        _npz(x=np.ones((2, 1)), y=np.array(["a", "\ud800"])),
        ValidationError,
        "Unicode",
    ),
    ("object y", _npz(x=np.ones((2, 1)), y=np.array([1, "a"], dtype=object)), ValidationError, "y"),
    ("missing file", _with(GOOD, source="missing.csv"), NotFoundError, "no file missing.csv"),
    ("not a path", _with(GOOD, source=5), ValidationError, "give a file or folder path"),
    ("unknown bundled set", _with(GOOD, source="sklearn:mnist"), ValidationError, "not a bundled"),
    ("label not a column", _with(GOOD, label="c"), ValidationError, "no label column 'c'"),
    ("label not text", _with(GOOD, label=3), ValidationError, "name as text"),
    ("features as text", _with(GOOD, features="a"), ValidationError, "list of column names"),
    ("features not text", _with(GOOD, features=[1]), ValidationError, "list of column names"),
    ("unknown feature", _with(GOOD, features=["z"]), ValidationError, "no feature column"),
    ("feature twice", _with(GOOD, features=["a", "a"]), ValidationError, "named twice"),
    ("label as feature", _with(GOOD, label="y", features=["y"]), ValidationError, "both"),
    ("stratify without label", _with(GOOD, stratify=True), ValidationError, "needs a label"),
    ("negative seed", _with(GOOD, seed=-1), ValidationError, "seed -1"),
    ("float seed", _with(GOOD, seed=1.5), ValidationError, "seed 1.5"),
    ("text seed", _with(GOOD, seed="3"), ValidationError, "seed '3'"),
    ("bool seed", _with(GOOD, seed=True), ValidationError, "seed True"),
    ("split with text", _with(GOOD, split={"a": "1"}), ValidationError, "'1' is not a number"),
    ("empty split dict", _with(GOOD, split={}), ValidationError, "must sum to 1"),
    ("split over 1", _with(GOOD, split="a=0.5,b=0.6"), ValidationError, "must sum to 1"),
    ("split nan", _with(GOOD, split="a=nan"), ValidationError, "must be in (0, 1]"),
    ("split name", _with(GOOD, split="bad name=1"), ValidationError, "split name"),
    ("split as list", _with(GOOD, split=["a"]), ValidationError, "give a text spec"),
    ("bad dataset name", _with(GOOD, name="bad name"), ValidationError, "dataset name"),
    ("no dataset name", _with(GOOD, name=None), ValidationError, "dataset name"),
    ("empty folder", lambda tmp: {"source": tmp}, ValidationError, "holds no images"),
    ("images of two sizes", _images({"a": [(4, 4), (5, 5)]}), ValidationError, "differ in size"),
    ("corrupt image", _images({"a": [(4, 4)]}, b"\x89PNG nope"), ValidationError, "readable"),
    ("16-bit image", _sixteen_bit, ValidationError, "16 or 32 bits"),
    ("image_size 0", _with(_images({"a": [(4, 4)]}), image_size=(0, 5)), ValidationError, "1"),
    ("image_size -1", _with(_images({"a": [(4, 4)]}), image_size=(-1, 5)), ValidationError, "1"),
    ("image_size 1-D", _with(_images({"a": [(4, 4)]}), image_size=(5,)), ValidationError, "give"),
    ("image_size text", _with(_images({"a": [(4, 4)]}), image_size="4x4"), ValidationError, "give"),
    (
        "image_size huge",
        _with(_images({"a": [(4, 4)]}), image_size=(100_000, 100_000)),
        ValidationError,
        "Pillow's limit",
    ),
    ("image mode", _with(_images({"a": [(4, 4)]}), image_mode="CMYK"), ValidationError, "RGB"),
    (
        "label or features for images",
        _with(_images({"a": [(4, 4)]}), label="y"),
        ValidationError,
        "class folder",
    ),
    *(
        (
            f"{kind} label",
            _parquet(pa.table({"x": [1.0, 2, 3, 4], "y": array}), label="y"),
            ValidationError,
            "label column 'y'",
        )
        for kind, array in LABELS.items()
    ),
    (
        "null label column",
        _with(_csv("a,y\n1,\n2,\n"), label="y"),
        ValidationError,
        "label column 'y' is empty",
    ),
    (
        "NaN label",
        _parquet(pa.table({"x": [1.0, 2.0], "y": [0.5, float("nan")]}), label="y"),
        ValidationError,
        "1 NaN or infinite",
    ),
]


@pytest.mark.parametrize(("case", "make", "error", "message"), IMPORTS, ids=[c[0] for c in IMPORTS])
def test_bad_import_is_refused_and_writes_nothing(
    workspace: Workspace,
    tmp_path: Path,
    unchanged: Callable[[], None],
    case: str,
    make: Maker,
    error: type[HoneError],
    message: str,
) -> None:
    kwargs = {"name": "bad", **make(tmp_path)}
    with pytest.raises(error) as raised:
        hone.data.import_dataset(workspace=workspace, **kwargs)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    unchanged()


def test_bad_rows_at_the_very_end_write_nothing(
    workspace: Workspace,
    tmp_path: Path,
    unchanged: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Streaming does not mean writing early: a NaN in the last of 20,000 rows (read in
    many small batches) still leaves the blob store untouched."""
    monkeypatch.setattr(importers, "BATCH_BYTES", 4096)
    rows = "".join(f"{i},{i % 3}\n" for i in range(19_999))
    source = tmp_path / "late.csv"
    source.write_text("a,y\n" + rows + "nan,1\n")
    with pytest.raises(ValidationError, match="1 NaN"):
        hone.data.import_dataset(
            "late", source, label="y", split="a=0.5,b=0.5", workspace=workspace
        )
    unchanged()


@pytest.mark.parametrize("pixels", [150, 400])  # over the limit: a warning; over twice: an error
def test_decompression_bomb_is_refused(
    workspace: Workspace,
    tmp_path: Path,
    unchanged: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
    pixels: int,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    Image.new("L", (pixels // 10, 10)).save(tmp_path / "imgs" / "a" / "bomb.png")
    with pytest.raises(ValidationError, match="decompression bomb"):
        hone.data.import_dataset("bomb", tmp_path / "imgs", workspace=workspace)
    unchanged()


def test_accepted_edge_inputs(workspace: Workspace, tmp_path: Path) -> None:
    """Inputs that look odd but are fine: a NumPy integer seed means that integer; a file
    name that is not UTF-8 imports (shown with an escape); empty cells in a bool column
    are kept as NaN on request; a (rows, 1) label array is a label column."""
    plain = hone.data.import_dataset(
        "s", "sklearn:iris", split="a=0.5,b=0.5", seed=3, workspace=workspace
    )
    numpy_seed = hone.data.import_dataset(
        "s", "sklearn:iris", split="a=0.5,b=0.5", seed=np.int64(3), workspace=workspace
    )
    assert numpy_seed.id == plain.id
    latin = os.fsencode(tmp_path) + b"/caf\xe9.csv"
    with open(latin, "wb") as fh:
        fh.write(b"a,y\n1,0\n2,1\n")
    ds = hone.data.import_dataset("latin", os.fsdecode(latin), label="y", workspace=workspace)
    assert ds.rows == 2 and ds.row.source is not None and ds.row.source.endswith("caf\\xe9.csv")
    (tmp_path / "b.csv").write_text("a,b\n1,true\n2,\n")
    kept = hone.data.import_dataset(
        "b", tmp_path / "b.csv", allow_nonfinite=True, workspace=workspace
    )
    assert kept.summary["nonfinite"] == {"nan": 1, "inf": 0}
    x, _ = kept.to_numpy()
    assert x[0].tolist() == [1.0, 1.0] and np.isnan(x[1, 1])
    np.savez(tmp_path / "col.npz", x=np.ones((3, 2)), y=np.array([[0], [1], [0]]))
    column = hone.data.import_dataset("col", tmp_path / "col.npz", workspace=workspace)
    _, y = column.to_numpy()
    assert y is not None and y.tolist() == [0, 1, 0]


def test_odd_but_valid_text(workspace: Workspace, tmp_path: Path) -> None:
    """NUL characters and very long names are text like any other, on both backends; a
    feature named like an export column does not overwrite it; exports to a file name
    that is not UTF-8 work."""
    (tmp_path / "nul.csv").write_bytes(b"a\x00,split,y\n1,5,a\x00b\n2,6,c\n")
    ds = hone.data.import_dataset("nul", tmp_path / "nul.csv", label="y", workspace=workspace)
    assert ds.manifest.feature_names == ("a\x00", "split")
    assert ds.summary["schema"]["classes"] == ["a\x00b", "c"]
    again = hone.data.get("nul", workspace=workspace)
    assert again.summary["labels"]["all"] == {"a\x00b": 1, "c": 1}
    written = hone.data.export(ds, tmp_path / "out.csv")
    header = written.read_text().splitlines()[0]
    assert header == '"sample_id","__split","a\x00","split","y"'
    latin = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.parquet")
    with open(hone.data.export(ds, latin), "rb") as fh:
        assert pq.read_table(fh).num_rows == 2
    (tmp_path / "long.csv").write_text("a" * 100_000 + ",y\n1,0\n")
    long = hone.data.import_dataset("long", tmp_path / "long.csv", label="y", workspace=workspace)
    assert long.manifest.feature_names == ("a" * 100_000,)


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
