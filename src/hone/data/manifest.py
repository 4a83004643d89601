"""A dataset version's manifest: everything that makes the version what it is.

The manifest is canonical JSON (sorted keys, no spaces) stored as a blob; its sha256 is the
version id. It holds nothing that depends on where or when the data was imported (no
paths, no times), so importing identical content again yields the same version id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hone.errors import BlobError
from hone.ids import sha256_bytes

__all__ = ["FORMAT", "Chunk", "Column", "Manifest"]

FORMAT = "hone.dataset/1"
#: Physical column names inside every chunk.
SAMPLE_ID, SPLIT, FEATURES, LABEL = "__sample_id", "__split", "features", "label"


@dataclass(frozen=True)
class Column:
    """A logical column: the features tensor or the label."""

    name: str  # the user's name (the label column's, or "features")
    dtype: str  # numpy dtype name
    shape: tuple[int, ...]  # per-sample shape; () for a scalar


@dataclass(frozen=True)
class Chunk:
    digest: str  # the Parquet blob
    rows: int


@dataclass(frozen=True)
class Manifest:
    dataset: str
    features: Column
    feature_names: tuple[str, ...]
    label: Column | None
    classes: tuple[Any, ...] | None  # sorted label values, for classification labels
    chunks: tuple[Chunk, ...]
    splits: dict[str, int]  # rows per split
    parents: tuple[str, ...] = ()
    lineage: dict[str, Any] = field(default_factory=dict)  # the operation and its parameters
    #: Fitted preprocessing as data, applied in order when rows are read: each step is
    #: ``{"op": "standardize"|"minmax", "shift": [...], "scale": [...], ...}`` meaning
    #: ``x' = (x - shift) * scale`` per feature, so it can be compiled into ONNX later.
    transforms: tuple[dict[str, Any], ...] = ()

    @property
    def rows(self) -> int:
        return sum(chunk.rows for chunk in self.chunks)

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "dataset": self.dataset,
            "features": _column(self.features),
            "feature_names": list(self.feature_names),
            "label": _column(self.label) if self.label else None,
            "classes": list(self.classes) if self.classes is not None else None,
            "chunks": [{"digest": c.digest, "rows": c.rows} for c in self.chunks],
            "splits": dict(sorted(self.splits.items())),
            "parents": list(self.parents),
            "lineage": self.lineage,
            "transforms": list(self.transforms),
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()

    @property
    def digest(self) -> str:
        return sha256_bytes(self.to_json())

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            body = json.loads(data)
            if body.get("format") != FORMAT:
                raise BlobError(f"not a {FORMAT} manifest (format {body.get('format')!r})")
            label = body["label"]
            return cls(
                dataset=body["dataset"],
                features=_from_column(body["features"]),
                feature_names=tuple(body["feature_names"]),
                label=_from_column(label) if label else None,
                classes=tuple(body["classes"]) if body["classes"] is not None else None,
                chunks=tuple(Chunk(c["digest"], c["rows"]) for c in body["chunks"]),
                splits=dict(body["splits"]),
                parents=tuple(body["parents"]),
                lineage=body["lineage"],
                transforms=tuple(body["transforms"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BlobError(f"corrupt dataset manifest: {exc}") from exc


def _column(column: Column) -> dict[str, Any]:
    return {"name": column.name, "dtype": column.dtype, "shape": list(column.shape)}


def _from_column(body: dict[str, Any]) -> Column:
    return Column(body["name"], body["dtype"], tuple(body["shape"]))
