"""A corpus of bad input for imports (issue 6, fault 16): every case is refused with a
one-line HoneError that names the problem, and writes no blob and no dataset row.

Keep it growing: a new way to break an import belongs in IMPORTS. Derived versions,
references and the loader have their corpus in test_bad_input_derived.py, the CLI in
tests/cli/test_data_cli.py.
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
from hone.errors import HoneError, NotFoundError, ValidationError
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
    ("dataset name with a newline", _with(GOOD, name="digits\n"), ValidationError, "dataset name"),
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
