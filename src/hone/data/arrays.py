"""Array sources: NumPy ``.npz`` files (arrays ``x`` and ``y``) and scikit-learn's bundled sets.

An ``.npz`` is a zip of ``.npy`` arrays; each member is read as a stream of rows, so an
archive larger than memory imports in bounded memory (Fortran-ordered arrays, which are
stored column by column, are the exception: they are loaded whole).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Generator, Iterator
from contextlib import ExitStack, closing
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa

from hone.data.arrow import from_numpy, to_numpy
from hone.data.importers import BUNDLED, FileDigest, Source, rows_per_batch
from hone.errors import ValidationError

__all__ = ["ArraySource", "NpzSource", "bundled_source"]

_NPY_MAGIC = b"\x93NUMPY"


def _features_ok(dtype: np.dtype[np.generic]) -> bool:
    return dtype.kind in "biuf"


def _labels_ok(dtype: np.dtype[np.generic]) -> bool:
    return dtype.kind in "biufU"


class _Arrays(Source):
    """Raw batches of arrays: a fixed-size-list column ``x`` and, with labels, ``y``."""

    shape: tuple[int, ...]  # per-row shape of x
    x_dtype: np.dtype[np.generic]
    y_dtype: np.dtype[np.generic] | None
    label_column = 1

    def _batch(self, x: np.ndarray, y: np.ndarray | None) -> pa.RecordBatch:
        flat = np.ascontiguousarray(x).reshape(-1)
        columns = [pa.FixedSizeListArray.from_arrays(from_numpy(flat), int(np.prod(self.shape)))]
        names = ["x"]
        if y is not None:
            try:
                columns.append(from_numpy(np.ascontiguousarray(y).reshape(-1)))
            except UnicodeError as exc:
                raise ValidationError(
                    f"{self.text}: a label is not valid Unicode text ({exc}); store "
                    "labels as valid text or as numbers"
                ) from exc
            names.append("y")
        return pa.RecordBatch.from_arrays(columns, names=names)

    def decode(
        self, batch: pa.RecordBatch, dtype: np.dtype[Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        values = to_numpy(batch.column(0).flatten())
        x = values.astype(dtype or self.x_dtype, copy=False).reshape((batch.num_rows, *self.shape))
        if self.y_dtype is None:
            return x, None
        return x, self.decode_labels(batch.column(1))

    def decode_labels(self, column: pa.Array) -> np.ndarray | None:
        assert self.y_dtype is not None
        return to_numpy(column).astype(self.y_dtype, copy=False)


class ArraySource(_Arrays):
    """Arrays already in memory (the bundled sets)."""

    def __init__(
        self,
        kind: str,
        text: str,
        x: np.ndarray,
        y: np.ndarray | None,
        feature_names: tuple[str, ...],
        label_name: str | None,
        digest: str,
    ) -> None:
        self.kind, self.text = kind, text
        self.x, self.y = x, y
        self.shape = tuple(int(d) for d in x.shape[1:])
        self.x_dtype, self.y_dtype = x.dtype, (y.dtype if y is not None else None)
        self.feature_names, self.label_name = feature_names, label_name
        self._digest = digest

    def batches(self) -> Iterator[pa.RecordBatch]:
        size = rows_per_batch(int(np.prod(self.shape)))
        for start in range(0, len(self.x), size):
            stop = start + size
            yield self._batch(self.x[start:stop], None if self.y is None else self.y[start:stop])

    def digest(self) -> str:
        return self._digest


def bundled_source(name: str, label: str | None, features: list[str] | None) -> ArraySource:
    if name not in BUNDLED:
        raise ValidationError(
            f"sklearn:{name} is not a bundled set; choose one of "
            f"{', '.join('sklearn:' + n for n in BUNDLED)}"
        )
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise ValidationError("bundled sets need scikit-learn: pip install scikit-learn") from exc
    bunch = getattr(datasets, f"load_{name}")()
    x, y = np.asarray(bunch.data), np.asarray(bunch.target)
    feature_names = tuple(str(n) for n in bunch.feature_names)
    if features:
        unknown = [f for f in features if f not in feature_names]
        if unknown:
            raise ValidationError(f"sklearn:{name} has no feature(s) {', '.join(unknown)}")
        x = x[:, [feature_names.index(f) for f in features]]
        feature_names = tuple(features)
    hasher = hashlib.sha256(f"sklearn:{name}".encode())
    hasher.update(np.ascontiguousarray(x).tobytes())
    hasher.update(np.ascontiguousarray(y).tobytes())
    return ArraySource(
        "sklearn", f"sklearn:{name}", x, y, feature_names, label or "target", hasher.hexdigest()
    )


class _Member:
    """One ``.npy`` member of an archive: its header, and its rows as a stream."""

    def __init__(self, archive: zipfile.ZipFile, name: str, shown: str) -> None:
        self.name = name
        with archive.open(f"{name}.npy") as fh:
            self.shape, self.fortran, self.dtype = _header(fh, f"{shown}: {name!r}")
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self.native = self.dtype.newbyteorder("=")  # big-endian arrays read as native

    def rows(self, archive: zipfile.ZipFile, size: int) -> Generator[np.ndarray, None, None]:
        if self.fortran:  # stored column by column: no row can be read alone
            with archive.open(f"{self.name}.npy") as fh:
                whole = np.lib.format.read_array(fh, allow_pickle=False)
            for start in range(0, len(whole), size):
                yield whole[start : start + size].astype(self.native)
            return
        with archive.open(f"{self.name}.npy") as fh:
            _header(fh, self.name)
            left = self.shape[0]
            while left:
                count = min(size, left)
                data = fh.read(count * self.row_bytes)
                if len(data) != count * self.row_bytes:
                    raise ValidationError(f"array {self.name!r} is truncated")
                rows = np.frombuffer(data, dtype=self.dtype).reshape((count, *self.row_shape))
                yield rows.astype(self.native, copy=False)
                left -= count


def _header(fh: IO[bytes], what: str) -> tuple[tuple[int, ...], bool, np.dtype[np.generic]]:
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except ValueError as exc:
        raise ValidationError(f"{what} is not a readable .npy array: {exc}") from exc
    return tuple(int(d) for d in shape), bool(fortran), np.dtype(dtype)


class NpzSource(_Arrays):
    kind = "npz"

    def __init__(self, path: Path, shown: str, label: str | None, features: list[str] | None):
        if features:
            raise ValidationError("--features does not apply to .npz sources (arrays x and y)")
        self.path, self.text = path, shown
        self._digest = FileDigest(path, shown)
        with self._open() as archive:
            arrays = [n.removesuffix(".npy") for n in archive.namelist() if n.endswith(".npy")]
            if "x" not in arrays:
                raise ValidationError(
                    f"{shown}: an .npz source holds an array 'x' (and 'y' for labels); "
                    f"it has {', '.join(arrays) or 'no arrays'}"
                )
            y_name = label or "y"
            if label is not None and label not in arrays:
                raise ValidationError(f"{shown}: no array {label!r} for the labels")
            self.x = _Member(archive, "x", shown)
            self.y = _Member(archive, y_name, shown) if y_name in arrays else None
        self._check()
        self.shape = self.x.row_shape or (1,)  # a 1-D x is one feature per row
        self.x_dtype = self.x.native
        self.y_dtype = self.y.native if self.y is not None else None
        self.feature_names = tuple(f"x{i}" for i in range(int(np.prod(self.shape))))
        self.label_name = "y" if self.y is not None else None

    def _open(self) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as exc:
            with self.path.open("rb") as fh:
                single = fh.read(len(_NPY_MAGIC)) == _NPY_MAGIC
            hint = (
                "it is a single .npy array renamed; save with np.savez(path, x=features, y=labels)"
                if single
                else "save one with np.savez(path, x=features, y=labels)"
            )
            raise ValidationError(f"{self.text} is not an .npz archive: {hint}") from exc
        except OSError as exc:
            raise ValidationError(f"cannot read {self.text}: {exc.strerror or exc}") from exc

    def _check(self) -> None:
        x, y, shown = self.x, self.y, self.text
        if not x.shape:
            raise ValidationError(f"{shown}: 'x' must have a row axis, got a scalar")
        if not _features_ok(x.dtype):
            raise ValidationError(
                f"{shown}: 'x' is {x.dtype}, not numeric: features are booleans, integers "
                "or real floats (split complex numbers into real and imaginary parts)"
            )
        if x.row_shape and not int(np.prod(x.row_shape)):
            raise ValidationError(
                f"{shown}: 'x' has shape {x.shape}: no feature values per row; a row needs "
                "at least one"
            )
        if y is None:
            return
        if len(y.shape) != 1 and not (len(y.shape) == 2 and y.shape[1] == 1):
            raise ValidationError(
                f"{shown}: labels {y.name!r} have shape {y.shape}; they need one value per "
                "row, shape (rows,)"
            )
        y.shape, y.row_shape = y.shape[:1], ()
        if y.shape[0] != x.shape[0]:
            raise ValidationError(
                f"{shown}: 'x' has {x.shape[0]} rows but the labels have {y.shape[0]}"
            )
        if not _labels_ok(y.dtype):
            raise ValidationError(
                f"{shown}: labels {y.name!r} are {y.dtype}; labels are numbers, booleans or "
                "text (str)"
            )

    def batches(self) -> Iterator[pa.RecordBatch]:
        self._digest.start()
        size = rows_per_batch(int(np.prod(self.shape)))
        with ExitStack() as stack:
            archive = stack.enter_context(self._open())
            # the member streams close before the archive, whatever ends the read
            xs = stack.enter_context(closing(self.x.rows(archive, size)))
            ys = stack.enter_context(closing(self.y.rows(archive, size))) if self.y else None
            try:
                for x in xs:
                    y = next(ys) if ys is not None else None
                    yield self._batch(x.reshape(len(x), *self.shape), y)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ValidationError(f"{self.text} is damaged: {exc}") from exc

    def digest(self) -> str:
        return self._digest.result()
