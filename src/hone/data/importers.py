"""Reading a source (CSV, Parquet, NumPy .npz, scikit-learn's bundled sets) into arrays.

Every importer returns the same thing: a features array (rows by per-sample shape), their
names, the labels (if any), and the digest of the source's bytes. Bad input is reported
with what was wrong and where; nothing is written until a source has been read whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from hone.errors import NotFoundError, ValidationError

__all__ = ["BUNDLED", "TABLE_SUFFIXES", "Imported", "read_source", "sample_ids_for"]

BUNDLED = ("digits", "iris", "wine", "breast_cancer")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Sources with named columns (the others name their own arrays: .npz, images, bundled).
TABLE_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES


@dataclass(frozen=True)
class Imported:
    features: np.ndarray  # (rows, *shape), numeric
    feature_names: tuple[str, ...]
    labels: np.ndarray | None
    label_name: str | None
    kind: str  # csv, parquet, npz, sklearn
    digest: str  # sha256 of the source's bytes (or of the bundled set's arrays)


def read_source(
    source: str,
    label: str | None,
    features: list[str] | None,
    *,
    image_mode: str = "RGB",
    image_size: tuple[int, int] | None = None,
) -> Imported:
    if source.startswith("sklearn:"):
        return _sklearn(source.removeprefix("sklearn:"), label, features)
    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"no file {source}")
    if path.is_dir():
        if label is not None or features:
            raise ValidationError(
                "an image folder's label is its class folder: --label and --features do not apply"
            )
        from hone.data.images import read_image_folder

        return read_image_folder(path, mode=image_mode, image_size=image_size)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _npz(path, label, features)
    if suffix in CSV_SUFFIXES:
        table, kind = _read_csv(path), "csv"
    elif suffix in PARQUET_SUFFIXES:
        table, kind = _read_parquet(path), "parquet"
    else:
        raise ValidationError(f"{source}: unknown format {suffix!r} (csv, parquet, npz)")
    return _from_table(table, label, features, kind, _file_digest(path), source)


def _file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                hasher.update(block)
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return hasher.hexdigest()


def _read_csv(path: Path) -> pa.Table:
    import pyarrow.csv as pcsv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        return pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=delimiter))
    except pa.ArrowInvalid as exc:
        # pyarrow says e.g. "CSV parse error: Expected 3 columns, got 2: 1,2" with the row
        raise ValidationError(f"{path}: {str(exc).splitlines()[0]}") from exc
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from exc


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"{path} is not a readable Parquet file: {exc}") from exc


def _from_table(
    table: pa.Table,
    label: str | None,
    features: list[str] | None,
    kind: str,
    digest: str,
    source: str,
) -> Imported:
    if table.num_rows == 0:
        raise ValidationError(f"{source} holds no rows: a dataset needs at least one")
    names = table.column_names
    if label is not None and label not in names:
        raise ValidationError(
            f"{source}: no label column {label!r}; columns are {', '.join(names)}"
        )
    chosen = features or [n for n in names if n != label]
    missing = [n for n in chosen if n not in names]
    if missing:
        raise ValidationError(
            f"{source}: no feature column(s) {', '.join(missing)}; columns are {', '.join(names)}"
        )
    if label is not None and label in chosen:
        raise ValidationError(f"{source}: {label!r} cannot be both the label and a feature")
    if not chosen:
        raise ValidationError(f"{source}: no feature columns")
    arrays = []
    for name in chosen:
        column = table.column(name)
        if not (
            pa.types.is_integer(column.type)
            or pa.types.is_floating(column.type)
            or pa.types.is_boolean(column.type)
        ):
            raise ValidationError(
                f"{source}: feature column {name!r} is {column.type}, not numeric (a column "
                "with mixed or text values); encode it as numbers first, or leave it out "
                "with --features"
            )
        arrays.append(column.to_numpy(zero_copy_only=False))
    matrix = np.column_stack(arrays) if arrays else np.empty((table.num_rows, 0))
    labels = None
    if label is not None:
        column = table.column(label)
        if column.null_count:
            raise ValidationError(
                f"{source}: label column {label!r} has {column.null_count} empty value(s)"
            )
        labels = column.to_numpy(zero_copy_only=False)
    return Imported(matrix, tuple(chosen), labels, label, kind, digest)


def _npz(path: Path, label: str | None, features: list[str] | None) -> Imported:
    if features:
        raise ValidationError("--features does not apply to .npz sources (arrays x and y)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data:
                raise ValidationError(
                    f"{path}: an .npz source holds an array 'x' (and 'y' for labels); "
                    f"it has {', '.join(data.files) or 'no arrays'}"
                )
            x = data["x"]
            y_name = label or "y"
            y = data.get(y_name)
            if label is not None and y is None:
                raise ValidationError(f"{path}: no array {label!r} for the labels")
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path} is not a readable .npz file: {exc}") from exc
    if x.ndim == 0:
        raise ValidationError(f"{path}: 'x' must have a row axis, got a scalar")
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if y is not None and len(y) != len(x):
        raise ValidationError(f"{path}: 'x' has {len(x)} rows but the labels have {len(y)}")
    if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
        raise ValidationError(f"{path}: 'x' is {x.dtype}, not numeric")
    width = int(np.prod(x.shape[1:]))
    names = tuple(f"x{i}" for i in range(width))
    return Imported(x, names, y, "y" if y is not None else None, "npz", _file_digest(path))


def _sklearn(name: str, label: str | None, features: list[str] | None) -> Imported:
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
    return Imported(x, feature_names, y, label or "target", "sklearn", hasher.hexdigest())


def sample_ids_for(digest: str, rows: int) -> np.ndarray:
    """Stable 63-bit ids: splitmix64 over (the source's digest + the row index), so the same
    row of the same source always gets the same id, and ids from sources differ."""
    base = np.uint64(int(digest[:16], 16))
    with np.errstate(over="ignore"):
        z = base + np.arange(rows, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z & np.uint64(0x7FFFFFFFFFFFFFFF)).astype(np.int64)
