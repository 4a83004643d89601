"""A dataset version, as users hold it: metadata at hand, rows read on demand."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from hone.blobs import BlobStore
from hone.data.chunks import read_table
from hone.data.manifest import FEATURES, LABEL, Manifest
from hone.data.versions import VersionRow
from hone.errors import ValidationError
from hone.store.database import Database

if TYPE_CHECKING:
    from hone.data.torch_adapter import TorchDataset

__all__ = ["DatasetVersion", "apply_transforms", "features_of"]


def features_of(table: pa.Table, manifest: Manifest) -> np.ndarray:
    """The features column as an array of (rows, *shape), without a copy when possible."""
    values = table.column(FEATURES).combine_chunks().flatten()
    flat: np.ndarray = values.to_numpy(zero_copy_only=False)
    return flat.reshape((table.num_rows, *manifest.features.shape))


def apply_transforms(x: np.ndarray, transforms: tuple[dict[str, Any], ...]) -> np.ndarray:
    """``x' = (x - shift) * scale`` per feature, for each fitted step in order."""
    for step in transforms:
        shift = np.asarray(step["shift"], dtype=np.float64)
        scale = np.asarray(step["scale"], dtype=np.float64)
        flat = x.reshape(len(x), -1)
        out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        x = ((flat - shift) * scale).astype(out_dtype, copy=False).reshape(x.shape)
    return x


@dataclass(frozen=True, eq=False)
class DatasetVersion:
    """One immutable version of a dataset (``name@id``)."""

    row: VersionRow
    blobs: BlobStore
    db: Database

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

    def to_arrow(self, split: str | None = None, *, verify: bool = False) -> pa.Table:
        """The rows (of ``split`` only, if given): sample id, split, features, label;
        ``verify`` checks every chunk against its digest first."""
        self._check_split(split)
        return read_table(self.manifest.chunks, self.blobs, split, verify=verify)

    def to_numpy(
        self, split: str | None = None, *, raw: bool = False, verify: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(X, y)``: X shaped (rows, *feature shape), y None for a version without labels.

        The version's fitted transforms (``normalize``) are applied unless ``raw``; raw
        features and labels are read-only views of Arrow memory (no copy): copy them to
        change them in place. ``verify`` checks every chunk against its digest first.
        """
        table = self.to_arrow(split, verify=verify)
        manifest = self.manifest
        x = features_of(table, manifest)
        if not raw:
            x = apply_transforms(x, manifest.transforms)
        y = table.column(LABEL).to_numpy() if manifest.label is not None else None
        return x, y

    def torch(self, split: str | None = None) -> TorchDataset:
        """A ``torch.utils.data.Dataset`` over ``split``'s rows (Arrow memory, no copy of
        the split; transforms applied per sample)."""
        from hone.data.torch_adapter import TorchDataset  # torch: imported only when used

        self._check_split(split)
        return TorchDataset(self, split)

    def _check_split(self, split: str | None) -> None:
        if split is not None and split not in self.splits:
            raise ValidationError(
                f"{self.ref} has no split {split!r}; it has {', '.join(sorted(self.splits))}"
            )
