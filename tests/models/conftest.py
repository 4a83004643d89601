"""A trained digits model shared by a module's tests (training is seconds; the records
each test makes are its own model names)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import hone.data
import hone.train
from hone.config import Workspace
from hone.data.dataset import DatasetVersion
from hone.store.setup import init_workspace
from hone.tracking.tracker import close_trackers


@dataclass(frozen=True)
class Trained:
    ws: Workspace
    raw: DatasetVersion  # digits, split train/validation/test
    data: DatasetVersion  # normalized on train: what the runs trained on
    weak: str  # a run of 1 epoch
    strong: str  # a run of 4 epochs, same seed


def train_digits(home: Path, store_uri: str | None = None) -> Trained:
    ws, _ = init_workspace(home, store_uri=store_uri)
    raw = hone.data.import_dataset(
        "digits",
        "sklearn:digits",
        split="train=0.7,validation=0.15,test=0.15",
        stratify=True,
        workspace=ws,
    )
    data = hone.data.normalize(raw)
    runs = []
    for epochs in (1, 4):
        out = hone.train.train("builtin:cnn", data, params={"epochs": epochs}, workspace=ws)
        assert out.status.value == "finished", out.error
        runs.append(out.run_id)
    return Trained(ws, raw, data, runs[0], runs[1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    yield train_digits(tmp_path_factory.mktemp("trained") / "ws")
    close_trackers()
