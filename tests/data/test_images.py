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


def test_class_names_reach_torch_as_indices_and_new_classes_append(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    pets = hone.data.import_dataset(
        "pets",
        _folder(tmp_path / "a", {"cat": [(4, 4)] * 2, "dog": [(4, 4)] * 2}),
        split="train",
        workspace=sqlite_workspace,
    )
    labels = sorted(int(y) for _, ys in hone.data.loader(pets, "train", 8) for y in ys)
    assert labels == [0, 0, 1, 1]  # cat, cat, dog, dog: indices into the sorted classes
    assert int(pets.torch("train")[0][1]) in (0, 1)
    more = hone.data.append(pets, _folder(tmp_path / "b", {"fox": [(4, 4)]}), split="train")
    assert more.summary["schema"]["classes"] == ["cat", "dog", "fox"]
    assert sorted(int(y) for _, ys in hone.data.loader(more, "train", 8) for y in ys) == [
        0,
        0,
        1,
        1,
        2,
    ]


def test_appending_or_relabeling_with_the_wrong_kind_is_refused(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    np.savez(tmp_path / "ints.npz", x=np.arange(8).reshape(4, 2), y=np.array([0, 1, 0, 1]))
    ints = hone.data.import_dataset("ints", tmp_path / "ints.npz", workspace=sqlite_workspace)
    np.savez(tmp_path / "floats.npz", x=np.full((2, 2), 0.5), y=np.array([0, 1]))
    with pytest.raises(ValidationError, match=r"features are float64, but ints@.* holds int64"):
        hone.data.append(ints, tmp_path / "floats.npz", split="all")
    sample = ints.to_arrow().column("__sample_id").to_pylist()[0]
    with pytest.raises(ValidationError, match=r"label 'cat' are <U3, but ints@.* holds int64"):
        hone.data.relabel(ints, {sample: "cat"})
