"""A checkpoint's state, copied off the training: what ``torch.load(weights_only=True)``
can load back (checked, naming what cannot), in CPU memory of its own, so that training
moves on while the copy is written. From a GPU the copies are enqueued, not waited for.
"""

from __future__ import annotations

import collections
import enum
from typing import Any

import numpy as np
import torch

from hone.errors import ValidationError

__all__ = ["PINNED_BYTES", "HostCopies", "give_back_pinned_memory", "plain"]

#: At most this much of a checkpoint is copied off a GPU through pinned memory (the rest
#: waits, one tensor at a time): PyTorch caches pinned blocks, rounded up to powers of two,
#: and a model's whole state held page-locked would be memory no one else can have.
PINNED_BYTES = 256 * 2**20


class HostCopies:
    """Contiguous copies in CPU memory of their own. From a GPU a copy is only enqueued
    (into pinned memory, from PyTorch's cached host allocator): copying one tensor at a
    time, each waited for, cost the training thread milliseconds a checkpoint; ``done``
    gives the events to wait on before the copies are read."""

    def __init__(self) -> None:
        self.devices: set[torch.device] = set()
        self.pinned = 0  # bytes

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.detach()
        if tensor.layout != torch.strided:  # sparse: copied as it is, at once
            return tensor.to("cpu", copy=True)
        size = tensor.numel() * tensor.element_size()
        if tensor.device.type != "cuda" or self.pinned + size > PINNED_BYTES:
            return tensor.to("cpu", copy=True, memory_format=torch.contiguous_format)
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        self.devices.add(tensor.device)
        self.pinned += size
        return host

    def done(self) -> list[Any]:
        """An event on each GPU copied from, recorded after its copies."""
        events = []
        for device in self.devices:
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            event.record(torch.cuda.current_stream(device))
            events.append(event)
        return events


def give_back_pinned_memory() -> None:
    """PyTorch's cached pinned blocks, freed (``torch.accelerator.empty_host_cache``,
    where this PyTorch has it: older ones keep them until the process ends)."""
    empty = getattr(getattr(torch, "accelerator", None), "empty_host_cache", None)
    used_cuda = torch.cuda.is_available() and torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
    if callable(empty) and used_cuda:
        empty()


#: Exactly these types (not their subclasses: an IntEnum is an int that
#: ``torch.load(weights_only=True)`` refuses) come back from a checkpoint.
_PLAIN = frozenset(
    {int, float, bool, str, bytes, type(None), torch.dtype, torch.device, torch.Size}
)
_TENSORS = frozenset({torch.Tensor, torch.nn.Parameter})
_KEYS = frozenset({int, float, bool, str, type(None)})
#: Deeper nesting is a structure that contains itself, or close enough.
MAX_DEPTH = 100


def plain(value: Any, where: str, depth: int = 0, *, copy: HostCopies | None = None) -> Any:
    """A copy of ``value`` that a checkpoint can load back without unpickling arbitrary
    objects: tensors copied into CPU memory (where loading puts them), NumPy scalars made
    Python numbers (an optimizer built with an lr from NumPy holds one); what has no safe
    form (NumPy arrays, enums, functions, the user's objects) is refused, naming where."""
    kind = type(value)
    if kind in _TENSORS:  # a copy in CPU memory: the live one moves on with training
        if copy is None:
            return value.detach().to("cpu", copy=True)
        return copy(value)
    if kind in _PLAIN:
        return value
    if depth > MAX_DEPTH:
        raise ValidationError(
            f"save_checkpoint: {where} is nested over {MAX_DEPTH} deep (does it contain itself?)"
        )
    if isinstance(value, np.generic) and value.ndim == 0 and kind.__module__ == "numpy":
        return plain(value.item(), where, depth + 1, copy=copy)
    if kind is dict or kind is collections.OrderedDict:
        copied = kind()
        for key, item in value.items():
            key = key.item() if isinstance(key, np.generic) else key
            if type(key) not in _KEYS:
                raise ValidationError(
                    f"save_checkpoint: {where} has a key of type {type(key).__name__}; "
                    "use strings or numbers"
                )
            copied[key] = plain(item, f"{where}[{key!r}]", depth + 1, copy=copy)
        return copied
    if kind is list or kind is tuple:
        return kind(
            plain(item, f"{where}[{i}]", depth + 1, copy=copy) for i, item in enumerate(value)
        )
    name = f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(value, enum.Enum):
        hint = " (save its .value)"
    elif kind.__module__.startswith("numpy"):
        hint = " (numpy: torch.from_numpy(a) or a.tolist())"
    else:
        hint = ""
    raise ValidationError(
        f"save_checkpoint: {where} is a {name}, which a checkpoint cannot load back safely; "
        f"keep to tensors, numbers, strings, lists and dicts{hint}"
    )
