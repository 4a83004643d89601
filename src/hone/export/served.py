"""The model as it is exported and served: raw features in, the dataset version's fitted
preprocessing first (``x' = (x - shift) * scale`` per feature, computed in float64 as the
training data was), the recipe's network, then what a caller wants back: class
probabilities and the winning class's index (classification), or the value (regression).

``reference`` computes the same outputs the way training fed the network (NumPy's
transforms, then PyTorch): every export is checked against it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hone.data.dataset import apply_transforms

__all__ = ["Served", "output_names", "reference"]


def output_names(classification: bool) -> list[str]:
    return ["probabilities", "label"] if classification else ["prediction"]


class Served(nn.Module):
    def __init__(
        self,
        network: nn.Module,
        transforms: Sequence[Mapping[str, Any]],
        classification: bool,
    ) -> None:
        super().__init__()
        self.network = network
        self.classification = classification
        self.steps = len(transforms)
        for i, step in enumerate(transforms):
            shift = torch.tensor(step["shift"], dtype=torch.float64)
            scale = torch.tensor(step["scale"], dtype=torch.float64)
            self.register_buffer(f"shift{i}", shift)
            self.register_buffer(f"scale{i}", scale)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.steps:
            shape = x.shape
            x = x.to(torch.float64).reshape(shape[0], -1)
            for i in range(self.steps):
                x = (x - getattr(self, f"shift{i}")) * getattr(self, f"scale{i}")
            x = x.reshape(shape)
        if x.dtype == torch.float64:  # what the training loop gives a network
            x = x.to(torch.float32)
        return _outputs(self.network(x), self.classification)


def _outputs(out: torch.Tensor, classification: bool) -> tuple[torch.Tensor, ...]:
    if classification:
        logits = out.float()
        return torch.softmax(logits, dim=-1), torch.argmax(logits, dim=-1)
    return (out.float().reshape(out.shape[0]),)


def reference(
    network: nn.Module,
    raw: np.ndarray,
    transforms: Sequence[Mapping[str, Any]],
    classification: bool,
) -> list[np.ndarray]:
    """The outputs for ``raw`` computed as training computed its inputs."""
    x = apply_transforms(raw, tuple(dict(t) for t in transforms)) if transforms else raw
    tensor = torch.from_numpy(np.ascontiguousarray(x))
    if tensor.dtype == torch.float64:
        tensor = tensor.float()
    with torch.no_grad():
        return [t.numpy() for t in _outputs(network(tensor), classification)]
