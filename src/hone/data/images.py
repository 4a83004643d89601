"""Image folders (``class_name/file.png``) as fixed-shape uint8 tensors.

Images are decoded with Pillow at import, not kept as encoded bytes: training reads
tensors, the loader hands out batches of a split without decoding or copying, and the
statistics describe pixels. The price is size on disk (zstd-compressed pixels rather than
PNG/JPEG), acceptable for the datasets hone targets. Every image must have the same size
unless ``image_size`` asks for a resize; the message names the files that differ.

Images are decoded in batches, on a few threads at once (Pillow releases the GIL while
it decodes), and each is decoded once: the importer spills the pixels between passes.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hone.data.arrow import from_numpy, to_numpy
from hone.data.importers import Source, display_path, rows_per_batch
from hone.errors import ValidationError

__all__ = ["IMAGE_SUFFIXES", "ImageFolder", "check_image_size"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MODES = ("RGB", "L")
#: Pixel modes wider than 8 bits a channel: Pillow clips them when converting to RGB or L.
WIDE_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def check_image_size(size: object) -> tuple[int, int] | None:
    """``image_size`` as (width, height) of positive integers, or None."""
    if size is None:
        return None
    from PIL import Image

    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or any(isinstance(d, bool) or not isinstance(d, int | np.integer) for d in size)
    ):
        raise ValidationError(f"image_size {size!r}: give (width, height), e.g. (64, 64)")
    width, height = (int(d) for d in size)
    if width < 1 or height < 1:
        raise ValidationError(
            f"image_size {size!r}: width and height must be at least 1 pixel, e.g. (64, 64)"
        )
    limit = Image.MAX_IMAGE_PIXELS or 0
    if limit and width * height > limit:
        raise ValidationError(
            f"image_size {size!r}: {width * height:,} pixels per image is more than Pillow's "
            f"limit of {limit:,}"
        )
    return width, height


class ImageFolder(Source):
    kind = "images"
    label_name = "class"
    label_column = 1
    feature_names: tuple[str, ...] = ()

    def __init__(
        self, root: Path, shown: str, *, mode: str = "RGB", image_size: object = None
    ) -> None:
        if mode not in MODES:
            raise ValidationError(f"image mode {mode!r}: use 'RGB' or 'L' (grayscale)")
        self.root, self.text, self.mode = root, shown, mode
        self.image_size = check_image_size(image_size)
        try:
            classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            self.files = [
                (c.name, f)
                for c in classes
                for f in sorted(c.iterdir())
                if f.suffix.lower() in IMAGE_SUFFIXES
            ]
        except OSError as exc:
            raise ValidationError(f"cannot read {shown}: {exc.strerror or exc}") from exc
        if not self.files:
            raise ValidationError(
                f"{shown} holds no images in class folders (expected {shown}/CLASS/IMAGE.png)"
            )
        names = sorted({label for label, _ in self.files})
        for name in names:
            try:
                name.encode()
            except UnicodeEncodeError:
                raise ValidationError(
                    f"class folder {display_path(root / name)} is not named in UTF-8 text; "
                    "rename it (its name becomes the class)"
                ) from None
        self.y_dtype = np.asarray(names).dtype
        self.shape: tuple[int, ...] | None = None
        self._digest = hashlib.sha256(f"images:{mode}:{self.image_size}".encode())
        self._sizes: dict[tuple[int, int], Path] = {}

    def batches(self) -> Iterator[pa.RecordBatch]:
        self._digest = hashlib.sha256(f"images:{self.mode}:{self.image_size}".encode())
        self._sizes = {}
        first = [self._decode(self.files[0][1])]  # its size sets the batch size
        self.shape = first[0][1].shape
        size = rows_per_batch(int(np.prod(self.shape)))
        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers, thread_name_prefix="hone-images") as pool:
            yield self._batch(self.files[:1], first)
            for start in range(1, len(self.files), size):
                part = self.files[start : start + size]
                yield self._batch(part, list(pool.map(self._decode, [f for _, f in part])))

    def _batch(
        self, part: list[tuple[str, Path]], decoded: list[tuple[bytes, np.ndarray]]
    ) -> pa.RecordBatch:
        pixels = []
        for (label, path), (data, image) in zip(part, decoded, strict=True):
            self._check_size(path, image)
            self._digest.update(os.fsencode(f"{label}/{path.name}"))
            self._digest.update(data)
            pixels.append(image)
        stacked = np.stack(pixels)
        flat = from_numpy(stacked.reshape(-1))
        x = pa.FixedSizeListArray.from_arrays(flat, int(np.prod(stacked.shape[1:])))
        y = pa.array([label for label, _ in part], type=pa.string())
        return pa.RecordBatch.from_arrays([x, y], names=["x", "y"])

    def _check_size(self, path: Path, image: np.ndarray) -> None:
        size = (image.shape[1], image.shape[0])
        self._sizes.setdefault(size, path)
        if len(self._sizes) > 1:
            (first_size, first), (other_size, other) = list(self._sizes.items())[:2]
            raise ValidationError(
                f"images differ in size: {display_path(first)} is {first_size[0]}x"
                f"{first_size[1]}, {display_path(other)} is {other_size[0]}x{other_size[1]}; "
                "pass image_size=(W, H) (--image-size WxH) to resize them all"
            )

    def _decode(self, path: Path) -> tuple[bytes, np.ndarray]:
        from PIL import Image, UnidentifiedImageError

        shown = display_path(path)
        try:
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as image:
                pixels = image.width * image.height
                if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
                    raise _bomb(shown, pixels)
                if image.mode in WIDE_MODES:
                    raise ValidationError(
                        f"{shown} has {image.mode!r} pixels (16 or 32 bits): decoding them to "
                        "8-bit RGB or L would clip their values; convert the images to 8 bits "
                        "first"
                    )
                image.load()
                converted = image.convert(self.mode)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(shown, None) from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ValidationError(f"{shown} is not a readable image: {exc}") from exc
        if self.image_size is not None:
            converted = converted.resize(self.image_size)
        array = np.asarray(converted, dtype=np.uint8)
        return data, array if array.ndim == 3 else array[:, :, None]

    def decode(
        self, batch: pa.RecordBatch, dtype: np.dtype[Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        assert self.shape is not None, "decode() before batches()"
        values = to_numpy(batch.column(0).flatten())
        pixels = values.reshape((batch.num_rows, *self.shape))
        if dtype is not None:
            pixels = pixels.astype(dtype, copy=False)
        return pixels, self.decode_labels(batch.column(1))

    def decode_labels(self, column: pa.Array) -> np.ndarray | None:
        labels: np.ndarray = column.to_numpy(zero_copy_only=False)
        return labels.astype(self.y_dtype)

    def digest(self) -> str:
        return self._digest.hexdigest()


def _bomb(shown: str, pixels: Any) -> ValidationError:
    from PIL import Image

    count = f"{pixels:,} pixels, " if pixels else ""
    return ValidationError(
        f"{shown} is too large to decode safely ({count}over Pillow's limit of "
        f"{Image.MAX_IMAGE_PIXELS:,}: a decompression bomb?); shrink or remove it"
    )
