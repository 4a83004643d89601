"""How versions relate: the row-level difference of two, and a dataset's history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from hone.data.chunks import read_table
from hone.data.dataset import DatasetVersion
from hone.data.manifest import LABEL, SAMPLE_ID, SPLIT
from hone.data.versions import VersionRow
from hone.errors import ValidationError

__all__ = ["VersionDiff", "diff", "history"]


@dataclass(frozen=True)
class VersionDiff:
    """Rows of ``new`` against ``old``, by sample id; counts by split (new's split for
    added, relabeled and moved rows, old's for removed)."""

    old: str
    new: str
    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    relabeled: dict[str, int] = field(default_factory=dict)
    moved: dict[str, int] = field(default_factory=dict)  # rows that changed split
    transforms_changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "added": self.added,
            "removed": self.removed,
            "relabeled": self.relabeled,
            "moved": self.moved,
            "transforms_changed": self.transforms_changed,
        }


def diff(old: DatasetVersion, new: DatasetVersion) -> VersionDiff:
    given: tuple[object, object] = (old, new)
    if not all(isinstance(v, DatasetVersion) for v in given):
        raise ValidationError(
            "diff compares two dataset versions: pass hone.data.get('NAME@VERSION') for each"
        )
    a, b = _keyed(old), _keyed(new)
    ids_a, ids_b = a[SAMPLE_ID], b[SAMPLE_ID]
    in_b = np.isin(ids_a, ids_b)
    in_a = np.isin(ids_b, ids_a)
    order_a = np.argsort(ids_a)
    common = ids_b[in_a]
    pos_a = order_a[np.searchsorted(ids_a[order_a], common)]
    pos_b = in_a.nonzero()[0]
    relabeled = np.zeros(len(common), dtype=bool)
    if LABEL in a and LABEL in b:
        relabeled = a[LABEL][pos_a] != b[LABEL][pos_b]
    moved = a[SPLIT][pos_a] != b[SPLIT][pos_b]
    return VersionDiff(
        old=old.ref,
        new=new.ref,
        added=_by_split(b[SPLIT][~in_a]),
        removed=_by_split(a[SPLIT][~in_b]),
        relabeled=_by_split(b[SPLIT][pos_b][relabeled]),
        moved=_by_split(b[SPLIT][pos_b][moved]),
        transforms_changed=old.manifest.transforms != new.manifest.transforms,
    )


def history(versions: list[VersionRow]) -> list[tuple[int, VersionRow]]:
    """The versions as a tree, depth first from the roots: (depth, version) pairs."""
    ids = {v.id for v in versions}
    children: dict[str | None, list[VersionRow]] = {}
    for version in versions:  # oldest first, so siblings keep their order
        parent = next((p for p in version.parents if p in ids), None)
        children.setdefault(parent, []).append(version)
    out: list[tuple[int, VersionRow]] = []

    def walk(node: str | None, depth: int) -> None:
        for child in children.get(node, []):
            out.append((depth, child))
            walk(child.id, depth + 1)

    walk(None, 0)
    return out


def _keyed(version: DatasetVersion) -> dict[str, np.ndarray]:
    manifest = version.manifest
    columns = [SAMPLE_ID, SPLIT] + ([LABEL] if manifest.label else [])
    table = read_table(manifest.chunks, version.blobs, columns=columns)
    out = {
        SAMPLE_ID: table.column(SAMPLE_ID).to_numpy(),
        SPLIT: table.column(SPLIT).cast(pa.string()).to_numpy(zero_copy_only=False),
    }
    if manifest.label:
        out[LABEL] = table.column(LABEL).to_numpy(zero_copy_only=False)
    return out


def _by_split(splits: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(splits.astype(str), return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts, strict=True)}
