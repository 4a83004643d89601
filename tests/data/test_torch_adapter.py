"""PyTorch over dataset versions: samples, batches, rank shards, and the run's inputs."""

from __future__ import annotations

import numpy as np
import pytest

import hone
import hone.data
from hone.config import Workspace
from hone.errors import ValidationError

torch = pytest.importorskip("torch")


@pytest.fixture
def digits(sqlite_workspace: Workspace) -> hone.data.DatasetVersion:
    return hone.data.import_dataset(
        "digits",
        "sklearn:digits",
        split="train=0.8,test=0.2",
        stratify=True,
        workspace=sqlite_workspace,
    )


def test_torch_dataset_yields_the_split(digits: hone.data.DatasetVersion) -> None:
    train = digits.torch("train")
    x, y = digits.to_numpy("train")
    assert len(train) == len(x) == 1438
    sample, label = train[5]
    assert sample.shape == (64,) and torch.equal(sample, torch.from_numpy(x[5].copy()))
    assert int(label) == int(y[5])  # type: ignore[index]
    batches = list(torch.utils.data.DataLoader(train, batch_size=100))
    assert sum(len(b[0]) for b in batches) == 1438
    normalized = hone.data.normalize(digits).torch("train")
    stacked = torch.stack([normalized[i][0] for i in range(len(normalized))])
    assert stacked.mean(dim=0).abs().max() < 1e-6  # the fitted transform is applied
    with pytest.raises(ValidationError, match="no split"):
        digits.torch("valid")


def test_ranks_get_disjoint_deterministic_equal_shards(
    digits: hone.data.DatasetVersion,
) -> None:
    shards = []
    for rank in range(3):
        loader = hone.data.loader(digits, "train", 64, rank=rank, world_size=3, seed=5)
        ids = [int(i) for x, _ in loader for i in range(len(x))]
        shards.append(loader.indices())
        assert len(ids) == len(loader.indices())
    assert all(len(s) == 1438 // 3 for s in shards)  # equal steps on every rank
    together = np.concatenate(shards)
    assert len(np.unique(together)) == len(together)  # disjoint
    again = hone.data.loader(digits, "train", 64, rank=1, world_size=3, seed=5)
    assert np.array_equal(again.indices(), shards[1])  # deterministic
    again.set_epoch(1)
    assert not np.array_equal(again.indices(), shards[1])  # reshuffled per epoch
    x_all, y_all = digits.to_numpy("train")
    first_x, first_y = next(iter(again))
    positions = again.indices()[:64]
    assert torch.equal(first_x, torch.from_numpy(x_all[positions]))
    assert torch.equal(first_y, torch.from_numpy(y_all[positions]))  # type: ignore[index]


def test_evaluation_shards_hold_every_sample_once(digits: hone.data.DatasetVersion) -> None:
    """``even=False``: 359 test samples over 3 ranks are 120, 120, 119 (none left out)."""
    shards, batches = [], 0
    for rank in range(3):
        loader = hone.data.loader(
            digits, "test", 50, rank=rank, world_size=3, shuffle=False, even=False
        )
        got = [len(x) for x, _ in loader]
        assert len(got) == len(loader)
        batches += len(got)
        shards.append(loader.indices())
    assert [len(s) for s in shards] == [120, 120, 119]
    assert sorted(np.concatenate(shards).tolist()) == list(range(359))
    assert batches == 3 + 3 + 3


def test_a_loader_begins_mid_epoch_where_a_job_stopped(
    digits: hone.data.DatasetVersion,
) -> None:
    whole = hone.data.loader(digits, "train", 64, seed=3)
    whole.set_epoch(2)
    expected = [x for x, _ in whole][5:]
    resumed = hone.data.loader(digits, "train", 64, seed=3)
    resumed.set_epoch(2, start=5)
    got = [x for x, _ in resumed]
    assert len(got) == len(expected) and all(
        torch.equal(a, b) for a, b in zip(got, expected, strict=True)
    )
    with pytest.raises(ValidationError, match="start -1"):
        resumed.set_epoch(0, start=-1)


def test_loader_options_are_checked(digits: hone.data.DatasetVersion) -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        hone.data.loader(digits, "train", 0)
    with pytest.raises(ValidationError, match="rank 3"):
        hone.data.loader(digits, "train", 8, rank=3, world_size=3)
    loader = hone.data.loader(digits, "test", 100, shuffle=False, drop_last=True)
    assert len(loader) == len(list(loader)) == 359 // 100


def test_the_loader_records_the_run_input(
    digits: hone.data.DatasetVersion, sqlite_workspace: Workspace
) -> None:
    with hone.start_run("train", workspace=sqlite_workspace) as run:
        for _ in hone.data.loader(digits, "train", 512):
            pass
        run.log_input(digits, "test")
    got = hone.get_run(run.id, workspace=sqlite_workspace)
    assert sorted((i.dataset, i.version_id, i.split) for i in got.inputs) == [
        ("digits", digits.id, "test"),
        ("digits", digits.id, "train"),
    ]
    with hone.start_run(workspace=sqlite_workspace) as other:
        with pytest.raises(ValidationError, match="log_input takes a dataset version"):
            other.log_input("digits@latest")
        other.log_input(digits)  # the whole version
    assert [i.split for i in hone.get_run(other.id, workspace=sqlite_workspace).inputs] == [None]


def test_a_corrupt_chunk_is_refused_by_the_loader(digits: hone.data.DatasetVersion) -> None:
    """What training reads is checked against the version's digests: flipped bytes in a
    chunk stop the loader with the blob named, never train on them."""
    from hone.errors import BlobError

    chunk = digits.manifest.chunks[0].digest
    path = digits.blobs._path(chunk)  # type: ignore[attr-defined]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(BlobError, match=f"blob {chunk} is corrupt"):
        hone.data.loader(digits, "train", 64)
    with pytest.raises(BlobError, match="corrupt"):
        digits.torch("train")
