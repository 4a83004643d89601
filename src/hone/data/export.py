"""Writing a version out: Parquet or CSV (one column per feature), or NumPy .npz."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from hone.data.dataset import DatasetVersion
from hone.data.importers import display_path
from hone.data.manifest import SAMPLE_ID, SPLIT
from hone.errors import ValidationError

__all__ = ["FORMATS", "export"]

FORMATS = ("parquet", "csv", "npz")


def export(
    version: DatasetVersion,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    split: str | None = None,
    transformed: bool = False,
) -> Path:
    """Write the version's rows (raw features unless ``transformed``) to ``path``.

    Parquet and CSV get the sample id, split, one column per feature (the names it was
    imported with) and the label; .npz gets arrays ``x``, ``y``, ``sample_id``, ``split``.
    """
    target = Path(path)
    if target.is_dir():
        raise ValidationError(f"{display_path(target)} is a folder; give a file path")
    fmt = fmt or target.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValidationError(f"export format {fmt!r}: use one of {', '.join(FORMATS)}")
    table = version.to_arrow(split)
    x, y = version.to_numpy(split, raw=not transformed)
    ids = table.column(SAMPLE_ID).to_numpy()
    splits = table.column(SPLIT).cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        if fmt == "npz":
            with tmp.open("wb") as fh:
                np.savez(
                    fh, x=x, y=y if y is not None else np.array([]), sample_id=ids, split=splits
                )
        else:
            flat = x.reshape(len(x), -1)
            names = list(version.manifest.feature_names)
            if len(names) != flat.shape[1]:
                names = [f"x{i}" for i in range(flat.shape[1])]
            label = version.manifest.label
            label_name = label.name if y is not None and label is not None else None
            taken = {*names, label_name}
            # a feature may itself be called "split": ours then get the prefix chunks use
            id_name = "sample_id" if "sample_id" not in taken else "__sample_id"
            split_name = "split" if "split" not in taken else "__split"
            columns = {id_name: ids, split_name: splits}
            columns.update({name: flat[:, i] for i, name in enumerate(names)})
            if label_name is not None:
                columns[label_name if label_name not in columns else "__label"] = y
            out = pa.table(columns)
            with tmp.open("wb") as fh:  # a Python file: pyarrow cannot encode latin-1 names
                if fmt == "parquet":
                    pq.write_table(out, fh)
                else:
                    pcsv.write_csv(out, fh)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ValidationError(
            f"cannot write {display_path(target)}: {exc.strerror or exc}"
        ) from exc
    return target
