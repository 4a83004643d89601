"""Turning a manifest and its summary into a stored version: the one write path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hone.blobs import BlobStore
from hone.data.dataset import DatasetVersion
from hone.data.manifest import Manifest
from hone.data.versions import VersionRow, insert_version, now
from hone.store.database import Database

__all__ = ["commit_version"]


def commit_version(
    db: Database,
    blobs: BlobStore,
    manifest: Manifest,
    summary: dict[str, Any],
    source: str | None = None,
    *,
    home: Path | None = None,
) -> DatasetVersion:
    """Store the manifest (its digest is the version id) and record the version; ``home``
    is the workspace folder the version is read from (its split cache's place)."""
    version_id = blobs.put_bytes(manifest.to_json())
    summary = {
        **summary,
        "schema": {
            "features": {
                "dtype": manifest.features.dtype,
                "shape": list(manifest.features.shape),
                "names": list(manifest.feature_names),
            },
            "label": {"name": manifest.label.name, "dtype": manifest.label.dtype}
            if manifest.label
            else None,
            "classes": list(manifest.classes) if manifest.classes is not None else None,
        },
        "lineage": manifest.lineage,
        "transforms": [
            {"op": t["op"], "fitted_on": t.get("fitted_on")} for t in manifest.transforms
        ],
    }
    row = insert_version(
        db,
        VersionRow(
            id=version_id,
            dataset=manifest.dataset,
            created_at=now(),
            rows=manifest.rows,
            operation=manifest.lineage.get("op", "import"),
            parents=manifest.parents,
            summary=summary,
            source=source,
        ),
    )
    return DatasetVersion(row, blobs, db, home)
