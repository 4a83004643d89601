"""The sample library's Python API: import, get and list dataset versions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hone.blobs import BlobStore, open_blob_store
from hone.config import Workspace
from hone.data.chunks import rows_table, write_chunks
from hone.data.commit import commit_version
from hone.data.dataset import DatasetVersion
from hone.data.importers import read_source, sample_ids_for
from hone.data.manifest import Column, Manifest
from hone.data.splits import assign_splits, parse_split_spec
from hone.data.stats import check_finite, summarize
from hone.data.versions import (
    DatasetInfo,
    VersionRow,
    check_dataset_name,
    dataset_infos,
    list_versions,
    resolve,
)
from hone.errors import ValidationError
from hone.store.database import Database, database_for

__all__ = ["get", "import_dataset", "list_datasets", "versions"]

WorkspaceLike = Workspace | str | os.PathLike[str] | None


def _open(workspace: WorkspaceLike) -> tuple[Database, BlobStore]:
    ws = workspace if isinstance(workspace, Workspace) else Workspace.discover(workspace)
    ws.require()
    return database_for(ws.store_uri), open_blob_store(ws.blob_uri)


def import_dataset(
    name: str,
    source: str | os.PathLike[str],
    *,
    label: str | None = None,
    features: list[str] | None = None,
    split: str | dict[str, float] | None = None,
    stratify: bool = False,
    seed: int = 0,
    allow_nonfinite: bool = False,
    image_mode: str = "RGB",
    image_size: tuple[int, int] | None = None,
    workspace: WorkspaceLike = None,
) -> DatasetVersion:
    """Import ``source`` as a new version of dataset ``name`` (or the same version, if this
    exact content was imported before).

    ``source``: a CSV, Parquet or ``.npz`` file (arrays ``x`` and ``y``), a folder of
    images ``CLASS/IMAGE.png`` (decoded to uint8 tensors in ``image_mode``, resized to
    ``image_size`` if given), or a bundled set ``sklearn:digits|iris|wine|breast_cancer``.
    ``split`` such as ``"train=0.8,test=0.2"`` assigns every row to a split,
    deterministically for a ``seed``; ``stratify`` keeps the label's class proportions in
    every split.
    """
    check_dataset_name(name)
    fractions = parse_split_spec(split)
    db, blobs = _open(workspace)
    source_text = str(source)
    imported = read_source(
        source_text, label, features, image_mode=image_mode, image_size=image_size
    )
    if len(imported.features) == 0:
        raise ValidationError(f"{source_text} holds no rows: a dataset needs at least one")
    if stratify and imported.labels is None:
        raise ValidationError("--stratify needs a label (--label COLUMN)")
    nonfinite = check_finite(imported.features, imported.feature_names, allow_nonfinite)
    rows = len(imported.features)
    splits = assign_splits(rows, fractions, seed, imported.labels if stratify else None)
    sample_ids = sample_ids_for(imported.digest, rows)
    table = rows_table(sample_ids, splits, imported.features, imported.labels)
    chunks = write_chunks(table, blobs)
    labels = imported.labels
    classes = _classes(labels)
    manifest = Manifest(
        dataset=name,
        features=Column(
            "features",
            str(imported.features.dtype),
            tuple(int(d) for d in imported.features.shape[1:]),
        ),
        feature_names=imported.feature_names,
        label=Column(imported.label_name or "label", str(labels.dtype), ())
        if labels is not None
        else None,
        classes=classes,
        chunks=tuple(chunks),
        splits={k: int(v) for k, v in zip(*np.unique(splits, return_counts=True), strict=True)},
        lineage={
            "op": "import",
            "source": {"kind": imported.kind, "digest": imported.digest},
            "params": {
                "label": label,
                "features": features,
                "split": fractions,
                "stratify": stratify,
                "seed": seed,
                "allow_nonfinite": allow_nonfinite,
                **(
                    {
                        "image_mode": image_mode,
                        "image_size": list(image_size) if image_size else None,
                    }
                    if imported.kind == "images"
                    else {}
                ),
            },
        },
    )
    summary = summarize(imported.features, imported.feature_names, labels, splits, nonfinite)
    source_label = (
        source_text if source_text.startswith("sklearn:") else str(Path(source_text).resolve())
    )
    return commit_version(db, blobs, manifest, summary, source_label)


def get(ref: str, *, workspace: WorkspaceLike = None) -> DatasetVersion:
    """A version by reference: ``NAME`` or ``NAME@latest`` (the newest), ``NAME@PREFIX``."""
    db, blobs = _open(workspace)
    return DatasetVersion(resolve(db, ref), blobs, db)


def list_datasets(*, workspace: WorkspaceLike = None) -> list[DatasetInfo]:
    """Every dataset with its number of versions and its newest version."""
    db, _ = _open(workspace)
    return dataset_infos(db)


def versions(name: str, *, workspace: WorkspaceLike = None) -> list[VersionRow]:
    """A dataset's versions, oldest first."""
    db, _ = _open(workspace)
    return list_versions(db, name)


def _classes(labels: np.ndarray | None) -> tuple[object, ...] | None:
    """Sorted distinct labels, when the labels look like classes (integers, text, bools)."""
    if labels is None or np.issubdtype(labels.dtype, np.floating):
        return None
    values = np.unique(labels)
    if len(values) > 10_000:
        return None
    return tuple(v.item() if hasattr(v, "item") else v for v in values)
