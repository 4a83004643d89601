"""The sample library: named, immutable, content-addressed dataset versions.

ds = hone.data.import_dataset("digits", "sklearn:digits", split="train=0.8,test=0.2",
                              stratify=True)
ds = hone.data.get("digits@latest")
x, y = ds.to_numpy(split="train")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hone.data.api import get, import_dataset, list_datasets, versions
from hone.data.compare import VersionDiff, diff, history
from hone.data.dataset import DatasetVersion
from hone.data.derive import append, append_arrays, filter, normalize, relabel, resplit
from hone.data.export import export
from hone.data.splits import SplitWarning
from hone.data.versions import DatasetInfo, VersionRow

if TYPE_CHECKING:
    from hone.data.torch_adapter import Loader


def loader(
    version: DatasetVersion, split: str | None = "train", batch_size: int = 256, **options: Any
) -> Loader:
    """Batches of ``(x, y)`` tensors over ``split``: one disjoint, deterministic part per
    rank (from torch.distributed, else RANK/WORLD_SIZE), reshuffled by ``set_epoch``, with
    the version's transforms applied; recorded as an input of the active run."""
    from hone.data.torch_adapter import loader as make  # torch: imported only when used

    return make(version, split, batch_size, **options)


__all__ = [
    "DatasetInfo",
    "DatasetVersion",
    "SplitWarning",
    "VersionDiff",
    "VersionRow",
    "append",
    "append_arrays",
    "diff",
    "export",
    "filter",
    "get",
    "history",
    "import_dataset",
    "list_datasets",
    "loader",
    "normalize",
    "relabel",
    "resplit",
    "versions",
]
