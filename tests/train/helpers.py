"""Datasets and recipes the training tests share."""

from __future__ import annotations

from pathlib import Path

import hone.data
from hone.config import Workspace

#: A recipe file: builtin:mlp whose loss can crash, go NaN, or SIGKILL its own process at
#: a given training step (CRASH_AT, on CRASH_RANK only if set; NAN_AT; KILL_AT, on
#: KILL_RANK and only in torchrun's first attempt).
FAULTY = """
import os, signal, torch
from hone.train.builtin import MLP

class Faulty(MLP):
    calls = 0

    def loss(self, params, data):
        ce = torch.nn.CrossEntropyLoss()

        def fn(out, y):
            if not out.requires_grad:
                return ce(out, y)
            Faulty.calls += 1
            rank = os.environ.get("RANK", "0")
            if Faulty.calls == int(os.environ.get("CRASH_AT", "0")) and rank == os.environ.get(
                "CRASH_RANK", rank
            ):
                raise RuntimeError("simulated crash")
            if Faulty.calls == int(os.environ.get("NAN_AT", "0")):
                return ce(out, y) * float("nan")
            if (
                Faulty.calls == int(os.environ.get("KILL_AT", "0"))
                and os.environ.get("RANK", "0") == os.environ.get("KILL_RANK", "1")
                and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
            ):
                os.kill(os.getpid(), signal.SIGKILL)
            return ce(out, y)

        return fn
"""


def digits(ws: Workspace) -> str:
    """The bundled digits, normalized on train: the exact version's reference."""
    raw = hone.data.import_dataset(
        "digits", "sklearn:digits", split="train=0.8,test=0.2", stratify=True, workspace=ws
    )
    data = hone.data.normalize(raw)
    return f"{data.name}@{data.id}"


def faulty_recipe(folder: Path) -> str:
    path = folder / "faulty.py"
    path.write_text(FAULTY)
    return f"{path}:Faulty"
