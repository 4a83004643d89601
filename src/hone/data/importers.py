"""Sources of rows: CSV, Parquet, NumPy .npz, scikit-learn's bundled sets, image folders.

Every source is read as a stream of Arrow record batches of one fixed schema (the raw
batches), which ``decode`` turns into arrays: features shaped (rows, *shape) and labels.
Raw batches are what the importer spills between its two passes, so a source is read
(and a CSV parsed, an image decoded) once. Each source knows its digest (the sha256 of
its bytes) once it has been read whole; sample ids derive from it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hone.data.chunks import CHUNK_ROWS
from hone.errors import NotFoundError, ValidationError

__all__ = [
    "BATCH_BYTES",
    "BUNDLED",
    "TABLE_SUFFIXES",
    "FileDigest",
    "ReadAgain",
    "Source",
    "display_path",
    "open_source",
    "rows_per_batch",
    "sample_ids_for",
]

BUNDLED = ("digits", "iris", "wine", "breast_cancer")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Sources with named columns (the others name their own arrays: .npz, images, bundled).
TABLE_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES
#: About this many bytes of float64 features per batch: memory is bounded by a few.
BATCH_BYTES = 8 << 20


class ReadAgain(Exception):
    """The source must be read again from its start (a CSV column's type was widened)."""


class Source(ABC):
    """Rows to import, read as raw batches (``batches``) and decoded (``decode``)."""

    kind: str  # csv, parquet, npz, sklearn, images
    text: str  # how messages name the source
    feature_names: tuple[str, ...]
    label_name: str | None
    label_column: int  # where the label is in a raw batch

    @abstractmethod
    def batches(self) -> Iterator[pa.RecordBatch]:
        """The raw batches, in row order. May raise ``ValidationError`` at any point, and
        ``ReadAgain`` when the importer must discard what it read and call this again."""

    def parts(self) -> list[Iterator[pa.RecordBatch]]:
        """The raw batches as consecutive parts that may be read at the same time (each in
        row order); ``finish`` is called once all are read. One part by default."""
        return [self.batches()]

    def finish(self) -> None:  # noqa: B027 - a hook: most sources check as they go
        """Checks that need the whole source, after every part of ``parts`` was read."""

    @abstractmethod
    def decode(
        self, batch: pa.RecordBatch, dtype: np.dtype[Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Features (rows, *shape), as ``dtype`` if given, and labels of a raw batch.
        Without ``dtype`` the features' dtype may differ between batches (an integer
        column with an empty cell decodes as float); the importer casts every batch to
        the join of them all."""

    def scan_values(
        self, batch: pa.RecordBatch
    ) -> tuple[np.ndarray | list[np.ndarray], np.ndarray | None, np.dtype[Any], tuple[int, ...]]:
        """What the first pass counts: the features as float64, either a (rows, values)
        matrix or a list of columns; the labels; the dtype and per-row shape ``decode``
        gives."""
        features, labels = self.decode(batch)
        flat = features.reshape(len(features), -1).astype(np.float64, copy=False)
        return flat, labels, features.dtype, tuple(int(d) for d in features.shape[1:])

    @abstractmethod
    def decode_labels(self, column: pa.Array) -> np.ndarray | None:
        """The labels of a raw batch's label column (None while their type is not final)."""

    @abstractmethod
    def digest(self) -> str:
        """The sha256 of the source's bytes; valid once ``batches`` was read to its end."""

    def close(self) -> None:  # noqa: B027 - a hook: most sources hold nothing open
        """Release open files (the importer calls it however reading ended)."""


class FileDigest:
    """The sha256 of a file, computed on a thread of its own while the file is parsed."""

    def __init__(self, path: Path, shown: str) -> None:
        self.path, self.shown = path, shown
        self._thread: threading.Thread | None = None
        self._value: str | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hone-digest", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            with self.path.open("rb") as fh:
                # one reused buffer (readinto), no allocation per block
                self._value = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError as exc:
            self._error = ValidationError(f"cannot read {self.shown}: {exc.strerror or exc}")

    def result(self) -> str:
        self.start()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def rows_per_batch(values_per_row: int) -> int:
    """Rows per batch: about ``BATCH_BYTES`` of float64 values, as a power-of-two part of
    a chunk (``CHUNK_ROWS``), so batches line up with chunks and are written without a
    copy."""
    rows = CHUNK_ROWS
    while rows > 1 and rows * 8 * max(values_per_row, 1) > BATCH_BYTES:
        rows //= 2
    return rows


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as text that any store and terminal accepts: bytes that are not UTF-8 (a
    latin-1 file name) are shown as ``\\xe9`` escapes rather than refused."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def open_source(
    source: str | os.PathLike[str],
    label: str | None,
    features: list[str] | None,
    *,
    image_mode: str = "RGB",
    image_size: tuple[int, int] | None = None,
) -> Source:
    """The source named by ``source``, its columns checked; nothing is read beyond what
    that takes (a CSV's first block, a Parquet footer, an .npz's array headers)."""
    checked: object = source
    if not isinstance(checked, str | os.PathLike):
        raise ValidationError(f"source {source!r}: give a file or folder path, or sklearn:NAME")
    if label is not None and not isinstance(label, str):
        raise ValidationError(f"label {label!r}: give the label column's name as text")
    names: object = features
    if names is not None and (
        not isinstance(names, list | tuple) or not all(isinstance(f, str) for f in names)
    ):
        raise ValidationError(f"features {features!r}: give a list of column names")
    text = os.fsdecode(source)
    if text.startswith("sklearn:"):
        from hone.data.arrays import bundled_source

        return bundled_source(text.removeprefix("sklearn:"), label, features)
    path = Path(text)
    shown = display_path(text)
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as exc:  # a name too long, a loop of links
        raise ValidationError(f"cannot read {shown}: {exc.strerror or exc}") from exc
    if not exists:
        raise NotFoundError(f"no file {shown}")
    if is_dir:
        if label is not None or features:
            raise ValidationError(
                "an image folder's label is its class folder: --label and --features do not apply"
            )
        from hone.data.images import ImageFolder

        return ImageFolder(path, shown, mode=image_mode, image_size=image_size)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        from hone.data.arrays import NpzSource

        return NpzSource(path, shown, label, features)
    if suffix in TABLE_SUFFIXES:
        if suffix in CSV_SUFFIXES:
            from hone.data.csv_files import CsvSource

            return CsvSource(path, shown, label, features)
        from hone.data.tables import ParquetSource

        return ParquetSource(path, shown, label, features)
    raise ValidationError(f"{shown}: unknown format {suffix!r} (csv, tsv, parquet, npz)")


def sample_ids_for(digest: str, rows: int, start: int = 0) -> np.ndarray:
    """Stable 63-bit ids: splitmix64 over (the source's digest + the row index), so the same
    row of the same source always gets the same id, and ids from sources differ."""
    base = np.uint64(int(digest[:16], 16))
    with np.errstate(over="ignore"):
        index = np.arange(start, start + rows, dtype=np.uint64)
        z = base + index * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z & np.uint64(0x7FFFFFFFFFFFFFFF)).astype(np.int64)
