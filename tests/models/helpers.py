"""What the registry tests share: a workspace's stores, fake checkpoints for store-level
tests, and a trained digits model for the end-to-end ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hone.blobs import BlobStore, open_blob_store
from hone.config import Workspace
from hone.ids import new_id
from hone.registry import ModelVersion, insert_version
from hone.store.database import Database, database_for
from hone.tracking.checkpoints import record_checkpoint

#: A recipe whose network uses an operator with no ONNX conversion (a Bessel function of
#: its input: no gradient flows through it, so it trains), to make exports fail.
UNEXPORTABLE = """
import torch
from hone.train.builtin import MLP

class Bessel(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x + 0.0 * torch.special.bessel_j0(x.float()))

class Unexportable(MLP):
    def model(self, params, data):
        return Bessel(super().model(params, data))
"""


def stores(ws: Workspace) -> tuple[Database, BlobStore]:
    return database_for(ws.store_uri), open_blob_store(ws.blob_uri)


def fake_version(ws: Workspace, name: str = "m", **body: Any) -> ModelVersion:
    """A version over a recorded (fake) checkpoint: for tests of the records alone."""
    db, blobs = stores(ws)
    run_id = new_id()
    weights = blobs.put_bytes(f"weights of {run_id}".encode())
    state = blobs.put_bytes(f"state of {run_id}".encode())
    record_checkpoint(db, run_id, 10, 1, weights, state, 10, {"val/acc": 0.5})
    return insert_version(
        db,
        name,
        run_id=run_id,
        step=10,
        weights=weights,
        dataset_version="0" * 64,
        body={"signature": {"classes": [0, 1]}, **body},
    )


def recipe_file(folder: Path, text: str, obj: str) -> str:
    path = folder / f"{obj.lower()}.py"
    path.write_text(text)
    return f"{path}:{obj}"
