"""What the tuning tests share: a recipe whose validation score is its searched param,
the CLI in this process, a study's trials as Optuna reads them, waiting, and processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from hone.cli.main import main
from hone.cli.state import state
from hone.config import Workspace
from hone.tracking.tracker import get_tracker
from hone.tune.storage import study_storage
from hone.tune.study import RUN_ATTR

#: builtin:mlp with a searched ``quality`` that is its validation ``score`` exactly (so
#: the pruner's choices are known), a model that refuses a quality above TUNE_FAIL_ABOVE,
#: and a pause of TUNE_PAUSE seconds each training step (a trial that takes a while).
QUALITY = """
import os, time, torch
from hone.train.builtin import MLP

class Quality(MLP):
    params = {**MLP.params, "quality": 0.5}
    search_space = {"quality": {"low": 0.0, "high": 1.0}}

    def model(self, params, data):
        if params.quality > float(os.environ.get("TUNE_FAIL_ABOVE", "2")):
            raise RuntimeError(f"quality {params.quality:.3f} is too high")
        return super().model(params, data)

    def metrics(self, params, data):
        q = params.quality
        return {"score": lambda out, y: torch.full((y.shape[0],), q)}

    def loss(self, params, data):
        ce = torch.nn.CrossEntropyLoss()
        pause = float(os.environ.get("TUNE_PAUSE", "0"))
        def fn(out, y):
            if pause and out.requires_grad:
                time.sleep(pause)
            return ce(out, y)
        return fn
"""


def hone_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    state.synced = False
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def trials_of(ws: Workspace, name: str) -> list[optuna.trial.FrozenTrial]:
    db = get_tracker(ws).db
    return optuna.load_study(study_name=name, storage=study_storage(db, name)).get_trials()


def running_trials(ws: Workspace, name: str, *, training: bool = False) -> list[Any]:
    """The study's running trials (with ``training``, those whose run has started); none
    while the study does not exist yet."""
    try:
        found = trials_of(ws, name)
    except Exception:
        return []
    return [
        t
        for t in found
        if t.state == optuna.trial.TrialState.RUNNING
        and (not training or RUN_ATTR in t.system_attrs)
    ]


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: who is whose parent)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        frontier += children
    return found
