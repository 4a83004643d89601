"""Rows of numbers drawn as small PNG pictures: dataset thumbnails and the labeling queue's
inputs. A row is a picture when its shape is (H, W), (H, W, 1|3|4) or (C, H, W) with C 1
or 3, or a flat vector of a square length whose features are named as pixels
(scikit-learn's 8x8 digits are 64 numbers named pixel_0_0 ...)."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = ["as_picture", "data_url", "picture_shape", "png"]

#: The side a thumbnail is scaled up to, at least (nearest neighbour: pixels stay sharp).
MIN_SIDE = 64
#: Larger pictures are scaled down to this side.
MAX_SIDE = 160


def picture_shape(shape: Sequence[int], names: Sequence[str] = ()) -> tuple[int, ...] | None:
    """The shape a row is drawn with (H, W) or (H, W, C); None when it is no picture. A
    flat row is a picture only when its features are named as pixels (``pixel_0_0``, as
    scikit-learn's digits): a table of 16 or 64 columns is not one."""
    dims = tuple(int(d) for d in shape)
    if len(dims) == 2 and min(dims) >= 2:
        return dims
    if len(dims) == 3 and dims[2] in (1, 3, 4) and min(dims[:2]) >= 2:
        return dims
    if len(dims) == 3 and dims[0] in (1, 3) and min(dims[1:]) >= 2:
        return (dims[1], dims[2], dims[0])  # channels first, as torchvision keeps them
    pixels = bool(names) and all(str(n).lower().startswith(("pixel", "px")) for n in names)
    if len(dims) == 1 and pixels and dims[0] >= 16 and math.isqrt(dims[0]) ** 2 == dims[0]:
        side = math.isqrt(dims[0])
        return (side, side)
    return None


def as_picture(
    row: np.ndarray, shape: Sequence[int], names: Sequence[str] = ()
) -> np.ndarray | None:
    """``row`` as 8-bit pixels, or None when its shape is no picture (``names``: see
    ``picture_shape``). Values are stretched from their own range (a row of 0..16 digits
    and one of 0..255 photos both show)."""
    target = picture_shape(shape, names)
    if target is None:
        return None
    dims = tuple(int(d) for d in shape)
    x = np.asarray(row, dtype=np.float64).reshape(dims)
    if len(dims) == 3 and dims[0] in (1, 3) and dims[2] not in (1, 3, 4):
        x = np.moveaxis(x, 0, -1)
    x = x.reshape(target)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(target[:2], dtype=np.uint8)
    low, high = float(x[finite].min()), float(x[finite].max())
    scaled = (np.where(finite, x, low) - low) / (high - low or 1.0) * 255.0
    pixels = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return pixels


def png(pixels: np.ndarray) -> bytes:
    image = Image.fromarray(pixels)
    side = max(image.size)
    if side < MIN_SIDE:
        factor = math.ceil(MIN_SIDE / side)
        size = (image.width * factor, image.height * factor)
        image = image.resize(size, Image.Resampling.NEAREST)
    elif side > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def data_url(pixels: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png(pixels)).decode()
