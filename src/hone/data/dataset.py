"""A dataset version, as users hold it: metadata at hand, rows read on demand."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from hone.blobs import BlobStore
from hone.data.chunks import read_table
from hone.data.manifest import FEATURES, LABEL, Manifest
from hone.data.versions import VersionRow
from hone.errors import ValidationError

__all__ = ["DatasetVersion"]


@dataclass(frozen=True, eq=False)
class DatasetVersion:
    """One immutable version of a dataset (``name@id``)."""

    row: VersionRow
    blobs: BlobStore

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def name(self) -> str:
        return self.row.dataset

    @property
    def ref(self) -> str:
        return f"{self.row.dataset}@{self.row.id[:12]}"

    @property
    def rows(self) -> int:
        return self.row.rows

    @property
    def splits(self) -> dict[str, int]:
        return dict(self.row.summary["splits"])

    @property
    def summary(self) -> dict[str, Any]:
        return self.row.summary

    @cached_property
    def manifest(self) -> Manifest:
        return Manifest.from_json(self.blobs.get_bytes(self.row.id))

    def __repr__(self) -> str:
        return f"<DatasetVersion {self.ref} rows={self.rows} splits={self.splits}>"

    def to_arrow(self, split: str | None = None) -> pa.Table:
        """The rows (of ``split`` only, if given): sample id, split, features, label."""
        self._check_split(split)
        return read_table(self.manifest.chunks, self.blobs, split)

    def to_numpy(self, split: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(X, y)``: X shaped (rows, *feature shape), read from Arrow memory without a
        copy; y is None for a version without labels."""
        table = self.to_arrow(split)
        manifest = self.manifest
        values = table.column(FEATURES).combine_chunks().flatten()
        x = values.to_numpy(zero_copy_only=False).reshape(
            (table.num_rows, *manifest.features.shape)
        )
        y = table.column(LABEL).to_numpy() if manifest.label is not None else None
        return x, y

    def _check_split(self, split: str | None) -> None:
        if split is not None and split not in self.splits:
            raise ValidationError(
                f"{self.ref} has no split {split!r}; it has {', '.join(sorted(self.splits))}"
            )
