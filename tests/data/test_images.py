"""Image folders: decoded to fixed-shape tensors, labels from class folders, bad images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hone
import hone.data
from hone.config import Workspace
from hone.errors import ValidationError


def _folder(root: Path, sizes: dict[str, list[tuple[int, int]]]) -> Path:
    rng = np.random.default_rng(0)
    for label, shapes in sizes.items():
        (root / label).mkdir(parents=True)
        for i, (w, h) in enumerate(shapes):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


def test_image_folder_round_trip(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", {"cat": [(8, 6)] * 3, "dog": [(8, 6)] * 2})
    ds = hone.data.import_dataset("pets", root, workspace=sqlite_workspace)
    x, y = ds.to_numpy()
    assert x.shape == (5, 6, 8, 3) and x.dtype == np.uint8
    assert y is not None and sorted(y.tolist()) == ["cat", "cat", "cat", "dog", "dog"]
    first = np.asarray(Image.open(root / "cat" / "0.png"))
    assert np.array_equal(x[0], first)
    assert ds.summary["schema"]["classes"] == ["cat", "dog"]
    gray = hone.data.import_dataset(
        "pets", root, image_mode="L", image_size=(4, 4), workspace=sqlite_workspace
    )
    assert gray.to_numpy()[0].shape == (5, 4, 4, 1) and gray.id != ds.id
    again = hone.data.import_dataset("pets", root, workspace=sqlite_workspace)
    assert again.id == ds.id


def test_different_sizes_and_corrupt_images(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    root = _folder(tmp_path / "mixed", {"a": [(8, 6), (5, 5)]})
    with pytest.raises(ValidationError, match=r"differ in size: .* is 8x6, .* is 5x5"):
        hone.data.import_dataset("mixed", root, workspace=sqlite_workspace)
    resized = hone.data.import_dataset("mixed", root, image_size=(5, 5), workspace=sqlite_workspace)
    assert resized.to_numpy()[0].shape == (2, 5, 5, 3)
    broken = _folder(tmp_path / "broken", {"a": [(4, 4)]})
    (broken / "a" / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValidationError, match=r"bad\.png is not a readable image"):
        hone.data.import_dataset("broken", broken, workspace=sqlite_workspace)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="holds no images"):
        hone.data.import_dataset("empty", tmp_path / "empty", workspace=sqlite_workspace)
    with pytest.raises(ValidationError, match="'RGB' or 'L'"):
        hone.data.import_dataset("x", root, image_mode="CMYK", workspace=sqlite_workspace)
    assert [d.name for d in hone.data.list_datasets(workspace=sqlite_workspace)] == ["mixed"]
