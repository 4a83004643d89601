"""Recipes that ship with hone: ``builtin:mlp`` for tabular versions, ``builtin:cnn`` for
image-shaped ones (image folders, or flat pixels named ``pixel_R_C`` as scikit-learn's
digits are)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import torch
from torch import nn

from hone.errors import ValidationError
from hone.train.params import Params
from hone.train.recipes import DataSpec

__all__ = ["BUILTIN", "CNN", "MLP", "image_layout"]

_PIXEL = re.compile(r"pixel_(\d+)_(\d+)")


def _outputs(data: DataSpec) -> int:
    return data.num_classes if data.classes is not None else 1


class _Input(nn.Module):
    """Features as the network takes them: a float tensor of ``shape`` (after the batch),
    channels first for images; 8-bit pixels scaled to [0, 1]."""

    def __init__(self, shape: tuple[int, ...], permute: bool, scale: float) -> None:
        super().__init__()
        self.shape, self.permute, self.scale = shape, permute, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.scale != 1.0:
            x = x * self.scale
        if self.permute:  # (N, H, W, C) -> (N, C, H, W)
            return x.permute(0, 3, 1, 2)
        return x.reshape(x.shape[0], *self.shape)


class MLP:
    """A multilayer perceptron over the flattened features."""

    params: ClassVar[dict[str, Any]] = {"hidden": 128, "layers": 2, "dropout": 0.1, "lr": 3e-3}
    #: What ``hone tune`` searches by default.
    search_space: ClassVar[dict[str, Any]] = {
        "lr": {"low": 3e-4, "high": 3e-2, "log": True},
        "hidden": [64, 128, 256],
        "layers": {"low": 1, "high": 3},
        "dropout": {"low": 0.0, "high": 0.4},
    }

    def model(self, params: Params, data: DataSpec) -> nn.Module:
        if params.layers < 1 or params.hidden < 1 or not 0 <= params.dropout < 1:
            raise ValidationError(
                "builtin:mlp: layers and hidden must be at least 1, dropout in [0, 1)"
            )
        scale = 1 / 255 if data.dtype == "uint8" else 1.0
        layers: list[nn.Module] = [_Input((data.features,), False, scale)]
        width = data.features
        for _ in range(params.layers):
            layers += [nn.Linear(width, params.hidden), nn.ReLU(), nn.Dropout(params.dropout)]
            width = params.hidden
        layers.append(nn.Linear(width, _outputs(data)))
        return nn.Sequential(*layers)


class CNN:
    """A small convolutional network: two 3x3 convolutions, a pooling when the image
    allows it, a wider convolution, global average pooling and a linear head."""

    params: ClassVar[dict[str, Any]] = {"channels": 32, "dropout": 0.1, "lr": 3e-3}
    #: What ``hone tune`` searches by default.
    search_space: ClassVar[dict[str, Any]] = {
        "lr": {"low": 1e-3, "high": 3e-2, "log": True},
        "channels": [16, 32, 48],
        "dropout": {"low": 0.0, "high": 0.3},
    }

    def model(self, params: Params, data: DataSpec) -> nn.Module:
        if params.channels < 1 or not 0 <= params.dropout < 1:
            raise ValidationError("builtin:cnn: channels must be at least 1, dropout in [0, 1)")
        (channels, height, width), permute = image_layout(data)
        scale = 1 / 255 if data.dtype == "uint8" else 1.0
        c = params.channels
        layers: list[nn.Module] = [
            _Input((channels, height, width), permute, scale),
            nn.Conv2d(channels, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(),
        ]
        if min(height, width) >= 4:
            layers.append(nn.MaxPool2d(2))
        layers += [
            nn.Conv2d(c, 2 * c, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(params.dropout),
            nn.Linear(2 * c, _outputs(data)),
        ]
        return nn.Sequential(*layers)


def image_layout(data: DataSpec) -> tuple[tuple[int, int, int], bool]:
    """(channels, height, width) of an image-shaped version, and whether its samples are
    stored channels last; tabular versions are refused."""
    shape = data.shape
    if len(shape) == 2:
        return (1, shape[0], shape[1]), False
    if len(shape) == 3 and shape[2] in (1, 3, 4):
        return (shape[2], shape[0], shape[1]), True
    if len(shape) == 3 and shape[0] in (1, 3, 4):
        return (shape[0], shape[1], shape[2]), False
    if len(shape) == 1:
        grid = [_PIXEL.fullmatch(name) for name in data.feature_names]
        if grid and all(grid):
            rows = 1 + max(int(m.group(1)) for m in grid if m)
            cols = 1 + max(int(m.group(2)) for m in grid if m)
            if rows * cols == shape[0]:
                return (1, rows, cols), False
    names = ", ".join(data.feature_names[:4]) + (", ..." if len(data.feature_names) > 4 else "")
    raise ValidationError(
        f"builtin:cnn needs image-shaped features ((H, W), (H, W, C), or flat pixels named "
        f"pixel_ROW_COL); {data.ref} has features of shape {shape} ({names}): train it "
        "with builtin:mlp"
    )


BUILTIN: dict[str, type] = {"mlp": MLP, "cnn": CNN}
