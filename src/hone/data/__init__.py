"""The sample library: named, immutable, content-addressed dataset versions.

ds = hone.data.import_dataset("digits", "sklearn:digits", split="train=0.8,test=0.2",
                              stratify=True)
ds = hone.data.get("digits@latest")
x, y = ds.to_numpy(split="train")
"""

from __future__ import annotations

from hone.data.api import get, import_dataset, list_datasets_in, versions
from hone.data.dataset import DatasetVersion
from hone.data.versions import DatasetInfo, VersionRow

list_datasets = list_datasets_in

__all__ = [
    "DatasetInfo",
    "DatasetVersion",
    "VersionRow",
    "get",
    "import_dataset",
    "list_datasets",
    "versions",
]
