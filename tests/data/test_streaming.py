"""Imports stream (issue 12, point 8): results do not depend on how the source is cut into
batches or parts, columns whose type changes after the first block are read right, and
every source kind streams."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from PIL import Image

import hone
import hone.data
import hone.errors
from hone.config import Workspace
from hone.data import chunks, csv_files, importers

SPLITS = {"train": 0.7, "valid": 0.2, "test": 0.1}


def _table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {
        f"f{i}": rng.normal(size=rows).astype(np.float32) for i in range(5)
    }
    columns["n"] = rng.integers(-3, 3, rows)
    columns["label"] = rng.integers(0, 7, rows)
    return pa.table(columns)


def _import(ws: Workspace, name: str, source: Path, **kwargs: object) -> hone.data.DatasetVersion:
    return hone.data.import_dataset(name, source, workspace=ws, **kwargs)  # type: ignore[arg-type]


def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few hundred rows, blocks of 4 KiB, CSV parts of 64 KiB and small
    chunks: every boundary falls somewhere else than in a default import."""
    monkeypatch.setattr(importers, "BATCH_BYTES", 2_000)
    monkeypatch.setattr(csv_files, "CSV_BLOCK_BYTES", 4_096)
    monkeypatch.setattr(csv_files, "CSV_PART_BYTES", 64 << 10)
    monkeypatch.setattr(csv_files, "MAX_CSV_PARTS", 4)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize("stratify", [False, True])
def test_version_does_not_depend_on_batches_or_parts(
    workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    stratify: bool,
) -> None:
    table = _table(30_000)
    source = tmp_path / f"t.{kind}"
    if kind == "csv":
        pcsv.write_csv(table, source)
    else:
        pq.write_table(table, source, row_group_size=7_000)
    options = {"label": "label", "split": SPLITS, "stratify": stratify, "seed": 5}
    whole = _import(workspace, "whole", source, **options)
    _small_batches(monkeypatch)
    if kind == "csv":
        assert len(csv_files.CsvSource(source, str(source), "label", None)._cuts()) == 3
    cut = _import(workspace, "cut", source, **options)
    assert cut.manifest.chunks == whole.manifest.chunks  # the same bytes, chunk for chunk
    assert cut.manifest.splits == whole.manifest.splits
    assert cut.summary["labels"] == whole.summary["labels"]
    assert cut.summary["duplicates"] == whole.summary["duplicates"]
    for name, stats in whole.summary["features"].items():
        for key, value in stats.items():
            assert cut.summary["features"][name][key] == pytest.approx(value, rel=1e-9)
    x, y = cut.to_numpy()
    read = pcsv.read_csv(source) if kind == "csv" else pq.read_table(source)
    expected = np.column_stack([read.column(i).to_numpy() for i in range(6)])
    assert x.shape == (30_000, 6) and x.dtype == np.float64 and np.array_equal(x, expected)
    assert y is not None and np.array_equal(y, read.column("label").to_numpy())


def test_chunks_cut_on_the_same_rows_whatever_the_batches(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 1_000)
    monkeypatch.setattr(importers, "CHUNK_ROWS", 1_000)
    np.savez(tmp_path / "a.npz", x=np.arange(7_500 * 3).reshape(7_500, 3), y=np.arange(7_500) % 4)
    whole = _import(workspace, "a", tmp_path / "a.npz", split="a=0.5,b=0.5")
    monkeypatch.setattr(importers, "BATCH_BYTES", 7 * 24)  # 7 rows: never a divisor
    cut = _import(workspace, "b", tmp_path / "a.npz", split="a=0.5,b=0.5")
    assert [c.rows for c in cut.manifest.chunks] == [1_000] * 7 + [500]
    assert cut.manifest.chunks == whole.manifest.chunks


@pytest.mark.parametrize(
    ("late", "dtype", "column"),
    [
        ("1.5", "float64", [1.0] * 3_000 + [1.5]),  # int64 in the first block, then a float
        ("", "float64", None),  # an empty cell makes the integer column float (NaN)
    ],
)
def test_a_column_that_changes_type_after_the_first_block(
    workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    late: str,
    dtype: str,
    column: list[float] | None,
) -> None:
    monkeypatch.setattr(csv_files, "CSV_BLOCK_BYTES", 1_024)
    source = tmp_path / "late.csv"
    source.write_text("a,y\n" + "".join(f"1,{i % 2}\n" for i in range(3_000)) + f"{late},1\n")
    ds = _import(workspace, "late", source, label="y", allow_nonfinite=True)
    x, _ = ds.to_numpy()
    assert ds.summary["schema"]["features"]["dtype"] == dtype
    if column is not None:
        assert x[:, 0].tolist() == column
    else:
        assert np.isnan(x[-1, 0]) and ds.summary["nonfinite"]["nan"] == 1


def test_a_label_column_empty_in_its_first_block(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow types such a column null from its first block, text once read whole; and
    an empty cell of a text label is an empty label, not the class ''."""
    monkeypatch.setattr(csv_files, "CSV_BLOCK_BYTES", 1_024)
    source = tmp_path / "labels.csv"
    source.write_text("a,y\n" + "".join(f"{i},\n" for i in range(2_000)) + "5,cat\n")
    with pytest.raises(hone.errors.ValidationError, match="label column 'y' has 2000 empty"):
        _import(workspace, "l", source, label="y")


def test_images_decode_in_batches(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "emu"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(9):
            pixels = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{i}.png")
    whole = _import(workspace, "i", tmp_path / "imgs", split="a=0.5,b=0.5", stratify=True)
    monkeypatch.setattr(importers, "BATCH_BYTES", 5 * 4 * 3 * 8 * 2)  # 2 images a batch
    cut = _import(workspace, "j", tmp_path / "imgs", split="a=0.5,b=0.5", stratify=True)
    assert cut.manifest.chunks == whole.manifest.chunks and cut.rows == 27
    assert cut.summary["labels"] == whole.summary["labels"]


def test_npz_streams_any_layout(workspace: Workspace, tmp_path: Path) -> None:
    """Compressed members, Fortran order and big-endian values read as the same rows."""
    x = np.arange(40, dtype=np.float64).reshape(10, 4)
    y = np.arange(10) % 3
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    plain = _import(workspace, "p", tmp_path / "plain.npz")
    np.savez_compressed(tmp_path / "zip.npz", x=x, y=y)
    np.savez(tmp_path / "fortran.npz", x=np.asfortranarray(x), y=y)
    np.savez(tmp_path / "big.npz", x=x.astype(">f8"), y=y.astype(">i8"))
    for name in ("plain", "zip", "fortran", "big"):
        ds = plain if name == "plain" else _import(workspace, name, tmp_path / f"{name}.npz")
        got, labels = ds.to_numpy()
        assert np.array_equal(got, x) and labels is not None and labels.tolist() == y.tolist()
        assert ds.manifest.features.dtype == "float64" and ds.manifest.label is not None
        assert ds.manifest.label.dtype == "int64"


PEAK = """
import sys, tracemalloc
from pathlib import Path
import pyarrow as pa
import hone, hone.data

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

work = Path(sys.argv[1])
ws = hone.init(work / "ws")
(work / "warm.csv").write_text("f0,label\\n1.5,0\\n2.5,1\\n")
hone.data.import_dataset("warm", work / "warm.csv", label="label", workspace=ws)
Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
before = status("VmRSS")
tracemalloc.start()  # NumPy's buffers report here; Arrow's pool keeps its own count
hone.data.import_dataset("big", sys.argv[2], label="label", split="a=0.9,b=0.1", workspace=ws)
held = tracemalloc.get_traced_memory()[1] + pa.default_memory_pool().max_memory()
print(status("VmHWM") - before, held / 2**20)
"""


def _peak_growth_mib(tmp: Path, rows: int) -> tuple[float, float]:
    """How much importing rows x 33 from CSV raises the peak RSS of a fresh process, and
    the most its NumPy arrays and Arrow buffers held (the peak of each, added)."""
    rng = np.random.default_rng(rows)
    columns: dict[str, np.ndarray] = {
        f"f{i}": rng.normal(size=rows).astype(np.float32) for i in range(32)
    }
    columns["label"] = rng.integers(0, 5, rows)
    source = tmp / f"{rows}.csv"
    pcsv.write_csv(pa.table(columns), source)
    del columns
    (tmp / str(rows)).mkdir()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(tmp / str(rows)), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    source.unlink()
    assert done.returncode == 0, done.stderr
    rss, held = done.stdout.split()
    return float(rss), float(held)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc only")
def test_memory_is_bounded_by_batches_not_by_the_file(tmp_path: Path) -> None:
    """Four times the rows (400,000 then 1,600,000 x 33: 302 MiB more as float64) must
    barely move what the import holds: a whole-file import held its data about four times
    over (1.2 GiB more at 1.2M rows); a streaming one holds a few batches and chunks
    whatever the file, plus 9 bytes a row (hashes for duplicates, split codes).

    What the import holds is counted where it is allocated (NumPy's buffers, Arrow's
    pool): the process's peak RSS adds what the allocators keep after a free, which
    varies from run to run (Arrow's mimalloc kept 60-170 MiB more at the larger size,
    jemalloc none), so RSS gets only a bound a whole-file import would break."""
    small_rss, small = _peak_growth_mib(tmp_path, 400_000)
    large_rss, large = _peak_growth_mib(tmp_path, 1_600_000)
    added = 1_200_000 * 33 * 8 / 2**20
    assert large - small < 0.3 * added, f"the import held {small:.0f} then {large:.0f} MiB"
    data = 1_600_000 * 33 * 8 / 2**20
    assert large_rss < 1.5 * data, f"the peak RSS grew {small_rss:.0f} then {large_rss:.0f} MiB"
