"""Image folders (``class_name/file.png``) as fixed-shape uint8 tensors.

Images are decoded with Pillow at import, not kept as encoded bytes: training reads
tensors, the loader hands out batches of a split without decoding or copying, and the
statistics describe pixels. The price is size on disk (zstd-compressed pixels rather than
PNG/JPEG), acceptable for the datasets hone targets. Every image must have the same size
unless ``image_size`` asks for a resize; the message names the files that differ.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from hone.data.importers import Imported
from hone.errors import ValidationError

__all__ = ["IMAGE_SUFFIXES", "read_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def read_image_folder(
    root: Path, *, mode: str = "RGB", image_size: tuple[int, int] | None = None
) -> Imported:
    from PIL import Image, UnidentifiedImageError

    if mode not in ("RGB", "L"):
        raise ValidationError(f"image mode {mode!r}: use 'RGB' or 'L' (grayscale)")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [
        (c.name, f)
        for c in classes
        for f in sorted(c.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise ValidationError(
            f"{root} holds no images in class folders (expected {root}/CLASS/IMAGE.png)"
        )
    hasher = hashlib.sha256(f"images:{mode}:{image_size}".encode())
    arrays: list[np.ndarray] = []
    labels: list[str] = []
    sizes: dict[tuple[int, int], Path] = {}
    for label, path in files:
        try:
            data = path.read_bytes()
            with Image.open(path) as image:
                image.load()
                converted = image.convert(mode)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ValidationError(f"{path} is not a readable image: {exc}") from exc
        if image_size is not None:
            converted = converted.resize(image_size)
        sizes.setdefault(converted.size, path)
        if len(sizes) > 1:
            (first_size, first), (other_size, other) = list(sizes.items())[:2]
            raise ValidationError(
                f"images differ in size: {first} is {first_size[0]}x{first_size[1]}, "
                f"{other} is {other_size[0]}x{other_size[1]}; pass image_size=(W, H) "
                "(--image-size WxH) to resize them all"
            )
        hasher.update(f"{label}/{path.name}".encode())
        hasher.update(data)
        pixels = np.asarray(converted, dtype=np.uint8)
        arrays.append(pixels if pixels.ndim == 3 else pixels[:, :, None])
        labels.append(label)
    return Imported(
        features=np.stack(arrays),
        feature_names=(),
        labels=np.asarray(labels),
        label_name="class",
        kind="images",
        digest=hasher.hexdigest(),
    )
