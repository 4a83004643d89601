"""The sample library's Python API: import, get and list dataset versions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hone.blobs import BlobStore, open_blob_store
from hone.config import Workspace
from hone.data.commit import commit_version
from hone.data.dataset import DatasetVersion
from hone.data.images import check_image_size
from hone.data.importers import display_path, open_source
from hone.data.ingest import Options, ingest
from hone.data.manifest import Column, Manifest
from hone.data.splits import check_seed, parse_split_spec
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


def _open(workspace: WorkspaceLike) -> tuple[Database, BlobStore, Path]:
    """The store, the blobs and the workspace folder (where the split cache lives)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.discover(workspace)
    ws.require()
    return database_for(ws.store_uri), open_blob_store(ws.blob_uri), ws.home


def import_dataset(
    name: str,
    source: str | os.PathLike[str],
    *,
    label: str | None = None,
    features: list[str] | None = None,
    split: str | dict[str, float] | None = None,
    stratify: bool = False,
    seed: int | np.integer[Any] = 0,
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
    deterministically for a ``seed`` (a non-negative integer); ``stratify`` keeps the
    label's class proportions in every split (a ``SplitWarning`` names classes too small
    to reach every split). The source is streamed: memory stays bounded by a few batches
    whatever its size, and nothing is stored unless all of it is valid.
    """
    check_dataset_name(name)
    fractions = parse_split_spec(split)
    seed = check_seed(seed)
    size = check_image_size(image_size)
    db, blobs, home = _open(workspace)
    opened = open_source(source, label, features, image_mode=image_mode, image_size=size)
    if stratify and opened.label_name is None:
        raise ValidationError("--stratify needs a label (--label COLUMN)")
    options = Options(
        names=list(fractions),
        fractions=list(fractions.values()),
        stratify=bool(stratify),
        seed=seed,
        allow_nonfinite=bool(allow_nonfinite),
    )
    done = ingest(opened, options, blobs)
    manifest = Manifest(
        dataset=name,
        features=Column("features", str(done.dtype), done.shape),
        feature_names=opened.feature_names,
        label=Column(opened.label_name or "label", str(done.label_dtype), ())
        if done.label_dtype is not None
        else None,
        classes=tuple(done.classes) if done.classes is not None else None,
        chunks=tuple(done.chunks),
        splits=done.splits,
        lineage={
            "op": "import",
            "source": {"kind": opened.kind, "digest": done.digest},
            "params": {
                "label": label,
                "features": list(features) if features else features,
                "split": fractions,
                "stratify": bool(stratify),
                "seed": seed,
                "allow_nonfinite": bool(allow_nonfinite),
                **(
                    {"image_mode": image_mode, "image_size": list(size) if size else None}
                    if opened.kind == "images"
                    else {}
                ),
            },
        },
    )
    summary = {**done.summary, **({"warnings": done.warnings} if done.warnings else {})}
    return commit_version(db, blobs, manifest, summary, _source_label(source), home=home)


def _source_label(source: str | os.PathLike[str]) -> str:
    text = os.fsdecode(source)
    if text.startswith("sklearn:"):
        return text
    return display_path(Path(text).resolve())


def get(ref: str, *, workspace: WorkspaceLike = None) -> DatasetVersion:
    """A version by reference: ``NAME`` or ``NAME@latest`` (the newest), ``NAME@PREFIX``."""
    db, blobs, home = _open(workspace)
    return DatasetVersion(resolve(db, ref), blobs, db, home)


def list_datasets(*, workspace: WorkspaceLike = None) -> list[DatasetInfo]:
    """Every dataset with its number of versions and its newest version."""
    db, _, _ = _open(workspace)
    return dataset_infos(db)


def versions(name: str, *, workspace: WorkspaceLike = None) -> list[VersionRow]:
    """A dataset's versions, oldest first."""
    db, _, _ = _open(workspace)
    return list_versions(db, name)
