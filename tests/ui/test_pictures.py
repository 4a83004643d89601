"""Which rows are pictures, and how they are drawn: the thumbnails' and the labeling
queue's inputs; a tabular row comes as its values."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hone.predictions.queries import PredictionRecord
from hone.registry.versions import ModelVersion
from hone.server.api_predictions import SHOWN_VALUES, _queue_item
from hone.server.images import as_picture, data_url, picture_shape, png

PIXELS = [f"pixel_{i}" for i in range(100)]


@pytest.mark.parametrize(
    ("shape", "drawn"),
    [
        ((8, 8), (8, 8)),
        ((64,), (8, 8)),  # named as pixels (below)
        ((28, 28, 1), (28, 28, 1)),
        ((32, 32, 3), (32, 32, 3)),
        ((3, 32, 32), (32, 32, 3)),
        ((10,), None),
        ((15,), None),
        ((4,), None),
        ((), None),
        ((2, 3, 5, 7), None),
        ((1, 5), None),
    ],
)
def test_picture_shapes(shape: tuple[int, ...], drawn: tuple[int, ...] | None) -> None:
    names = PIXELS[: shape[0]] if len(shape) == 1 else []
    assert picture_shape(shape, names) == drawn


def test_a_flat_row_is_a_picture_only_when_its_features_are_pixels() -> None:
    assert picture_shape((64,), [f"pixel_{i // 8}_{i % 8}" for i in range(64)]) == (8, 8)
    assert picture_shape((64,), [f"f{i}" for i in range(64)]) is None  # a table of 64 columns
    assert picture_shape((16,), []) is None
    assert picture_shape((28, 28), []) == (28, 28)  # shaped rows need no names


def test_pictures_stretch_their_own_range_and_survive_bad_values() -> None:
    digits = np.arange(64, dtype=np.float64) / 4  # 0..15.75
    pixels = as_picture(digits, (64,), PIXELS[:64])
    assert pixels is not None and pixels.dtype == np.uint8 and pixels.shape == (8, 8)
    assert pixels.min() == 0 and pixels.max() == 255
    channels_first = np.zeros((3, 5, 5))
    channels_first[0] = 1.0  # red
    rgb = as_picture(channels_first, (3, 5, 5))
    assert rgb is not None and rgb.shape == (5, 5, 3) and rgb[0, 0].tolist() == [255, 0, 0]
    broken = np.full(64, np.nan)
    assert as_picture(broken, (8, 8)).max() == 0  # type: ignore[union-attr]
    flat = np.full(64, 7.0)
    assert as_picture(flat, (8, 8)).max() == 0  # type: ignore[union-attr]
    mixed = np.array([np.inf, -np.inf, 1.0, 2.0] * 4)
    assert as_picture(mixed, (4, 4)) is not None
    assert as_picture(np.zeros(10), (10,)) is None


def test_small_pictures_grow_sharp_and_large_ones_shrink() -> None:
    small = Image.open(io.BytesIO(png(np.zeros((8, 8), np.uint8))))
    assert small.size == (64, 64)
    large = Image.open(io.BytesIO(png(np.zeros((600, 300, 3), np.uint8))))
    assert max(large.size) == 160
    assert data_url(np.zeros((8, 8), np.uint8)).startswith("data:image/png;base64,")


def _version(shape: list[int], names: list[str]) -> ModelVersion:
    signature = {
        "inputs": [{"name": "input", "dtype": "float32", "shape": [None, *shape]}],
        "classes": ["a", "b"],
        "feature_names": names,
    }
    return ModelVersion("m", 1, "r" * 32, 1, "w", "d", {"signature": signature}, 0.0, "me")


def _record(values: np.ndarray | None) -> PredictionRecord:
    return PredictionRecord(
        "req-1",
        "m",
        1,
        0.0,
        "a",
        None,
        None,
        1.0,
        None if values is None else values.astype(np.float32).tobytes(),
        None,
        [0.9, 0.1],
    )


class _NoBlobs:
    def exists(self, digest: str) -> bool:
        return False


class _Ws:
    blobs = _NoBlobs()


def test_a_tabular_input_comes_as_its_named_values() -> None:
    names = [f"f{i}" for i in range(5)]
    item = _queue_item(_record(np.arange(5.0)), _version([5], names), _Ws())  # type: ignore[arg-type]
    assert item["picture"] is None and item["values"] == [0, 1, 2, 3, 4]
    assert item["names"] == names and item["classes"] == ["a", "b"]
    table = [f"f{i}" for i in range(100)]
    wide = _queue_item(_record(np.arange(100.0)), _version([100], table), _Ws())  # type: ignore[arg-type]
    assert wide["picture"] is None  # 100 columns, not 10 x 10 pixels
    assert len(wide["values"]) == SHOWN_VALUES and wide["value_count"] == 100
    image = _queue_item(_record(np.arange(100.0)), _version([100], PIXELS), _Ws())  # type: ignore[arg-type]
    assert image["picture"] is not None


def test_a_signature_with_an_open_dimension_is_shown_without_values() -> None:
    version = _version([64], [])
    version.body["signature"]["inputs"][0]["shape"] = [None, None]
    item = _queue_item(_record(np.arange(64.0)), version, _Ws())  # type: ignore[arg-type]
    assert item["values"] is None and item["picture"] is None


def test_an_input_that_does_not_fit_its_signature_is_not_drawn() -> None:
    item = _queue_item(_record(np.arange(7.0)), _version([64], []), _Ws())  # type: ignore[arg-type]
    assert item["picture"] is None and item["values"] is None
    gone = _queue_item(_record(np.arange(64.0)), None, _Ws())  # type: ignore[arg-type]
    assert gone["picture"] is None and gone["values"] is None and gone["classes"] is None
    lost = _queue_item(_record(None), _version([64], []), _Ws())  # type: ignore[arg-type]
    assert lost["values"] is None
