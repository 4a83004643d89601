"""The standard loop on a GPU: CUDA and bfloat16 chosen by themselves, checkpoints that
load back and resume there, and one process per GPU.

The tests that need a GPU run on a GPU machine (a session's lent one); CI has none, so
there they skip. What can be checked without one (the GPU count refused before launch)
runs everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hone.data
import hone.train
from hone.config import Workspace
from hone.errors import ValidationError
from hone.store.database import database_for
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.entities import RunStatus
from hone.tracking.queries import get_run, metric_history, search_runs
from hone.train.launch import Topology, launch, prepare
from hone.train.params import declare, resolve
from hone.train.recipes import data_spec, load_recipe
from tests.train.helpers import digits, faulty_recipe

gpu = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device (these run on a GPU machine)"
)


@gpu
def test_the_loop_trains_on_the_gpu_in_bfloat16(sqlite_workspace: Workspace) -> None:
    ws = sqlite_workspace
    params = {"epochs": 5, "lr": 0.01}  # the quickstart's lr: 0.92 on the CPU
    outcome = hone.train.train("builtin:cnn", digits(ws), params=params, workspace=ws)
    assert outcome.status is RunStatus.FINISHED, outcome.error
    db = database_for(ws.store_uri)
    run = get_run(db, outcome.run_id)
    assert run.params["device"] == "cuda" and run.params["backend"] == "none"
    assert run.params["amp_dtype"] == ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    assert outcome.metrics["val/acc"] > 0.85  # bfloat16: not the CPU's digits exactly
    steps = [m.step for m in metric_history(db, run.id, "train/loss")]
    assert steps == list(range(1, int(run.params["total_steps"]) + 1))
    # A checkpoint written from GPU tensors loads into a model on either device.
    recipe = load_recipe("builtin:cnn")
    params = resolve(declare(recipe.params, recipe.ref), {})
    spec = data_spec(hone.data.get(run.params["data"], workspace=ws))
    for device in ("cpu", "cuda"):
        model = recipe.model(params, spec).to(device)
        restored = hone.train.load_latest(model, run=run.id, workspace=ws)
        assert restored is not None and restored.step == steps[-1]
        assert next(model.parameters()).device.type == device


@gpu
def test_a_crashed_gpu_run_resumes_where_it_stopped(
    sqlite_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = sqlite_workspace
    ref, recipe = digits(ws), faulty_recipe(tmp_path)
    params = {"epochs": 2, "checkpoint_every": 8, "keep_last": 5}
    monkeypatch.setenv("CRASH_AT", "30")
    failed = launch(prepare(recipe, ref, params, workspace=ws), Topology())
    assert failed.status is RunStatus.FAILED
    db = database_for(ws.store_uri)
    assert [c.step for c in list_checkpoints(db, failed.run_id)] == [8, 16, 23, 24]
    monkeypatch.delenv("CRASH_AT")
    resumed = launch(prepare(recipe, ref, params, workspace=ws), Topology(), resume=failed.run_id)
    assert resumed.status is RunStatus.FINISHED, resumed.error
    run = get_run(db, failed.run_id)
    assert run.params["device"] == "cuda" and run.tags["hone.resumed_at_step"] == "24"
    total = int(run.params["total_steps"])
    assert [m.step for m in metric_history(db, run.id, "train/loss")] == list(range(1, total + 1))
    assert resumed.metrics["val/acc"] > 0.8


def test_more_processes_than_gpus_are_refused_before_anything_starts(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each local process takes one GPU: asking for more would fail in every worker."""
    ws = sqlite_workspace
    ref = digits(ws)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 1
    if not torch.cuda.is_available():  # the check itself, on a machine without one
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    with pytest.raises(ValidationError, match=rf"this machine has {gpus} GPU\(s\)") as caught:
        hone.train.train("builtin:mlp", ref, nproc_per_node=gpus + 1, workspace=ws)
    assert "CUDA_VISIBLE_DEVICES=" in str(caught.value)
    assert search_runs(database_for(ws.store_uri), max_results=10) == []  # no run started
