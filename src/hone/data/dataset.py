"""A dataset version, as users hold it: metadata at hand, rows read on demand."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from hone.blobs import BlobStore
from hone.data.arrow import to_numpy as numpy_view
from hone.data.chunks import read_table
from hone.data.manifest import FEATURES, LABEL, Manifest
from hone.data.split_cache import SplitKey, cache_folder, shared_table
from hone.data.versions import VersionRow
from hone.errors import ValidationError
from hone.store.database import Database

if TYPE_CHECKING:
    from hone.data.torch_adapter import TorchDataset

__all__ = ["DatasetVersion", "apply_transforms", "features_of"]


def features_of(table: pa.Table, manifest: Manifest) -> np.ndarray:
    """The features column as an array of (rows, *shape), without a copy when possible."""
    flat = numpy_view(_one_array(table, FEATURES).flatten())
    return flat.reshape((table.num_rows, *manifest.features.shape))


def _one_array(table: pa.Table, name: str) -> pa.Array:
    """A column as one array. A single chunk is used as it is: combine_chunks copies even
    one chunk when its memory is a mapped file (the split cache's), undoing the sharing."""
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


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
    #: The workspace folder it was opened from: where the machine's split cache lives
    #: (``shared=True`` reads). None: no cache, every read decodes the chunks.
    home: Path | None = None

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
        self,
        split: str | None = None,
        *,
        raw: bool = False,
        verify: bool = False,
        shared: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(X, y)``: X shaped (rows, *feature shape), y None for a version without labels.

        The version's fitted transforms (``normalize``) are applied unless ``raw``; raw
        features and labels are read-only views of Arrow memory (no copy): copy them to
        change them in place. ``verify`` checks every chunk against its digest first.
        ``shared`` reads through this machine's split cache (``split_cache.py``): the
        first process decodes the split, from chunks it always verifies, and every process
        then maps the same decoded copy.
        """
        table = self._shared_table(split) if shared else self.to_arrow(split, verify=verify)
        manifest = self.manifest
        x = features_of(table, manifest)
        if not raw:
            x = apply_transforms(x, manifest.transforms)
        # numpy_view, not ChunkedArray.to_numpy: that imports pandas (~0.4 s per process).
        y = numpy_view(_one_array(table, LABEL)) if manifest.label is not None else None
        return x, y

    def torch(self, split: str | None = None) -> TorchDataset:
        """A ``torch.utils.data.Dataset`` over ``split``'s rows (Arrow memory, no copy of
        the split; transforms applied per sample)."""
        from hone.data.torch_adapter import TorchDataset  # torch: imported only when used

        self._check_split(split)
        return TorchDataset(self, split)

    def _shared_table(self, split: str | None) -> pa.Table:
        """Features and label of ``split``, from the split cache when there is one."""
        self._check_split(split)
        manifest = self.manifest
        columns = (FEATURES, LABEL) if manifest.label is not None else (FEATURES,)

        def build() -> pa.Table:
            table = read_table(manifest.chunks, self.blobs, split, list(columns), verify=True)
            return table.select(list(columns))  # the split column only served the filter

        if self.home is None:
            return build()
        rows = manifest.rows if split is None else manifest.splits[split]
        key = SplitKey(self.id, split, columns)
        return shared_table(
            cache_folder(self.home), key, rows, _decoded_bytes(manifest, rows), build
        )

    def _check_split(self, split: str | None) -> None:
        if split is not None and split not in self.splits:
            raise ValidationError(
                f"{self.ref} has no split {split!r}; it has {', '.join(sorted(self.splits))}"
            )


def _decoded_bytes(manifest: Manifest, rows: int) -> int:
    """About what ``rows`` rows take decoded (text labels only roughly): known before any
    chunk is read, so a split too large for the cache is never decoded just to learn it."""
    per_row = np.dtype(manifest.features.dtype).itemsize * int(np.prod(manifest.features.shape))
    if manifest.label is not None:
        per_row += np.dtype(manifest.label.dtype).itemsize
    return rows * per_row
