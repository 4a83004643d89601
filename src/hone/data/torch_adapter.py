"""PyTorch over a dataset version: Arrow memory, no copy of the split, shards by rank.

``TorchDataset`` is a map-style ``torch.utils.data.Dataset`` for any DataLoader.
``Loader`` is hone's own batched iterator: it indexes whole batches at once (no per-sample
Python calls), gives every rank of a distributed job a disjoint, deterministic part of the
split with the same number of batches (or, with ``even=False`` for evaluation, every
sample exactly once across ranks), gives class labels as indices 0..K-1 with
``label_index=True`` (what a classifier's loss takes), reshuffles per epoch, begins
mid-epoch on resume, applies the version's fitted transforms per batch, and records the
version as an input of the active run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from hone.data.dataset import DatasetVersion, apply_transforms
from hone.data.splits import check_seed
from hone.errors import ValidationError
from hone.tracking.run import active_run

__all__ = ["Loader", "TorchDataset", "class_indices", "int_from_environment", "loader"]


class TorchDataset(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Samples of one split: ``(features, label)`` tensors, features transformed."""

    def __init__(self, version: DatasetVersion, split: str | None = None) -> None:
        # A view of the machine's shared, decoded copy (split_cache.py), not a private one;
        # chunks checked against their digests when it was made.
        x, y = version.to_numpy(split, raw=True, verify=True, shared=True)
        self.version, self.split = version, split
        self._x, self._y = x, class_indices(y, version)
        self._transforms = version.manifest.transforms

    def __len__(self) -> int:
        return len(self._x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Arrow memory is read-only: one sample is copied, never the split.
        x = np.array(self._x[index : index + 1])
        if self._transforms:
            x = apply_transforms(x, self._transforms)
        y = self._y[index] if self._y is not None else -1
        return torch.from_numpy(x[0]), torch.as_tensor(y)


class Loader:
    """Batches of ``(x, y)`` tensors over one split, sharded by rank."""

    def __init__(
        self,
        version: DatasetVersion,
        split: str | None,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
        even: bool = True,
        label_index: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(
                f"batch_size must be an integer of at least 1, got {batch_size!r}"
            )
        seed = check_seed(seed)
        rank, world_size = _rank_and_world(rank, world_size)
        if not 0 <= rank < world_size:
            raise ValidationError(f"rank {rank} is not in [0, world_size={world_size})")
        self.version, self.split = version, split
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.even = even
        self.epoch = 0
        self.start = 0  # batches of this epoch to pass over (a resumed job did them)
        # Every rank of the job on this machine maps the same decoded split (one reads and
        # verifies the chunks); each batch below is gathered into memory of its own.
        self._x, y = version.to_numpy(split, raw=True, verify=True, shared=True)
        self._y = class_indices(y, version, always=label_index)
        self._transforms = version.manifest.transforms

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Shuffle differently (and identically on every rank) for this epoch; begin at
        batch ``start`` of it (where a resumed job stopped)."""
        for name, value in (("epoch", epoch), ("start", start)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"{name} {value!r}: give a non-negative integer")
        self.epoch, self.start = epoch, start

    def indices(self) -> np.ndarray:
        """This rank's sample positions for the current epoch."""
        total = len(self._x)
        order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(total)
            if self.shuffle
            else np.arange(total)
        )
        if self.even:  # equal steps on every rank (DDP needs it): a few samples wait
            order = order[: total - total % self.world_size]
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        """Batches in an epoch (on this rank), counting any passed over by ``start``."""
        total = len(self._x)
        count = total // self.world_size
        if not self.even:
            count += int(self.rank < total % self.world_size)
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        mine = self.indices()
        stop = len(mine) - len(mine) % self.batch_size if self.drop_last else len(mine)
        labels = self._y
        for start in range(self.start * self.batch_size, stop, self.batch_size):
            batch = mine[start : start + self.batch_size]
            x = self._x[batch]  # one gather per batch (a copy of the batch only)
            if self._transforms:
                x = apply_transforms(x, self._transforms)
            y = labels[batch] if labels is not None else np.full(len(batch), -1)
            yield torch.from_numpy(x), torch.from_numpy(np.asarray(y))


def class_indices(
    labels: np.ndarray | None, version: DatasetVersion, *, always: bool = False
) -> np.ndarray | None:
    """Text labels (an image folder's class names) become their index in the version's
    sorted classes: tensors hold numbers. Numeric labels pass through unchanged, unless
    ``always`` (what a classifier's loss needs: labels 3 and 7 become 0 and 1)."""
    classes = version.manifest.classes
    if labels is None or classes is None:
        return labels
    if labels.dtype.kind in "USO":
        names = np.asarray(classes, dtype=str)
        return np.searchsorted(names, labels.astype(str)).astype(np.int64)
    if not always:
        return labels
    values = np.asarray(classes)
    if (
        len(values)
        and values.dtype.kind in "iub"
        and np.array_equal(values, np.arange(len(values)))
    ):
        return labels.astype(np.int64, copy=False)  # already 0..K-1
    return np.searchsorted(values, labels).astype(np.int64)


def loader(
    version: DatasetVersion,
    split: str | None = "train",
    batch_size: int = 256,
    **options: Any,
) -> Loader:
    """Batches over ``split``, sharded by rank; records the input on the active run."""
    built = Loader(version, split, batch_size, **options)
    run = active_run()
    if run is not None:
        run.log_input(version, split)
    return built


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Given values first, then torch.distributed, then the RANK and WORLD_SIZE variables
    a launcher (torchrun) sets, then a single process. Garbage in the variables is
    refused with their names rather than read as some other rank."""
    for name, value in (("rank", rank), ("world_size", world_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValidationError(f"{name} {value!r}: give an integer")
    if rank is None or world_size is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank = torch.distributed.get_rank() if rank is None else rank
            world_size = torch.distributed.get_world_size() if world_size is None else world_size
        else:
            rank = int_from_environment("RANK", 0) if rank is None else rank
            world_size = int_from_environment("WORLD_SIZE", 1) if world_size is None else world_size
    if world_size < 1:
        raise ValidationError(
            f"world_size {world_size}: a job has at least one process (check WORLD_SIZE)"
        )
    return rank, world_size


def int_from_environment(name: str, default: int) -> int:
    """An integer a launcher (torchrun) put in the environment; garbage is refused with the
    variable's name rather than read as some other number."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValidationError(
            f"{name}={text!r} in the environment is not an integer; a launcher such as "
            "torchrun sets it, or unset it"
        ) from None
