"""The sample library: named, immutable, content-addressed dataset versions.

ds = hone.data.import_dataset("digits", "sklearn:digits", split="train=0.8,test=0.2",
                              stratify=True)
ds = hone.data.get("digits@latest")
x, y = ds.to_numpy(split="train")
"""

from __future__ import annotations

from hone.data.api import get, import_dataset, list_datasets_in, versions
from hone.data.compare import VersionDiff, diff, history
from hone.data.dataset import DatasetVersion
from hone.data.derive import append, filter, normalize, relabel, resplit
from hone.data.export import export
from hone.data.versions import DatasetInfo, VersionRow

list_datasets = list_datasets_in

__all__ = [
    "DatasetInfo",
    "DatasetVersion",
    "VersionDiff",
    "VersionRow",
    "append",
    "diff",
    "export",
    "filter",
    "get",
    "history",
    "import_dataset",
    "list_datasets",
    "normalize",
    "relabel",
    "resplit",
    "versions",
]
