"""The standard loop in one process: metrics, checkpoints, retention, resume, failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import hone
import hone.train
from hone.blobs import open_blob_store
from hone.config import Workspace
from hone.errors import UserError
from hone.store.database import database_for
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.entities import RunStatus
from hone.tracking.queries import get_run, metric_history
from hone.train.launch import Topology, launch, prepare
from tests.train.helpers import digits, faulty_recipe


def _weights(ws: Workspace, run_id: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    db, blobs = database_for(ws.store_uri), open_blob_store(ws.blob_uri)
    last = list_checkpoints(db, run_id)[-1]
    return load(blobs.get_bytes(last.weights))


def test_a_run_records_the_whole_job(workspace: Workspace) -> None:
    ref = digits(workspace)
    outcome = hone.train.train(
        "builtin:mlp",
        ref,
        params={"epochs": 3, "keep_last": 2, "keep_best": 1, "best_metric": "val/acc"},
        workspace=workspace,
    )
    assert outcome.status is RunStatus.FINISHED, outcome.error
    db = database_for(workspace.store_uri)
    run = get_run(db, outcome.run_id)
    assert run.status is RunStatus.FINISHED
    assert run.params["recipe"] == "builtin:mlp" and run.params["data"] == ref
    assert run.params["epochs"] == "3" and run.params["lr"] == "0.003"  # the recipe's default
    assert run.params["world_size"] == "1" and run.params["backend"] == "none"
    assert int(run.params["threads_per_rank"]) >= 1
    steps_per_epoch = -(-1437 // 64)
    total = 3 * steps_per_epoch
    assert run.params["total_steps"] == str(total)
    history = metric_history(db, run.id, "train/loss")
    assert [m.step for m in history] == list(range(1, total + 1))  # no gap, no duplicate
    accuracy = metric_history(db, run.id, "val/acc")
    assert [m.step for m in accuracy] == [steps_per_epoch * e for e in (1, 2, 3)]
    assert accuracy[-1].value > 0.9
    assert outcome.metrics["val/acc"] == pytest.approx(accuracy[-1].value)
    assert {i.split for i in run.inputs} == {"train", "test"}  # trained on, evaluated on
    assert json.loads(run.tags["hone.hosts"])[0].endswith("(node 0)")
    # Retention: the last two, plus the best by val/acc; the dropped blobs are gone.
    kept = list_checkpoints(db, run.id)
    assert 2 <= len(kept) <= 3 and kept[-1].step == total
    best = max(accuracy, key=lambda m: m.value)
    assert best.step in {c.step for c in kept}
    blobs = open_blob_store(workspace.blob_uri)
    for checkpoint in kept:
        assert blobs.exists(checkpoint.weights) and blobs.exists(checkpoint.state)
    assert len(list(blobs.digests())) < 3 * 2 + 30  # 3 epochs x 2 blobs were written


def test_an_interrupted_run_resumes_to_the_same_result(
    sqlite_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash at step 30 (checkpoints every 8 steps) and a resume in the same run end
    exactly as a run that never stopped: same steps, same weights, same metrics."""
    ws = sqlite_workspace
    ref, recipe = digits(ws), faulty_recipe(tmp_path)
    params = {"epochs": 2, "checkpoint_every": 8, "keep_last": 5}
    torch.set_num_threads(1)  # the same arithmetic in both runs
    straight = hone.train.train(recipe, ref, params=params, workspace=ws)
    assert straight.status is RunStatus.FINISHED

    monkeypatch.setenv("CRASH_AT", "30")
    failed = launch(prepare(recipe, ref, params, workspace=ws), Topology())
    assert failed.status is RunStatus.FAILED and failed.error is not None
    # One line: the error and where in the recipe's own code it came from.
    assert "RuntimeError: simulated crash (" in failed.error and "faulty.py, line" in failed.error
    db = database_for(ws.store_uri)
    crashed = next(r for r in _runs(db) if r.id != straight.run_id)
    assert crashed.status is RunStatus.FAILED
    assert [c.step for c in list_checkpoints(db, crashed.id)] == [8, 16, 23, 24]  # 23: an epoch

    monkeypatch.delenv("CRASH_AT")
    _refused_while_another_process_writes(ws, ref, recipe, params, crashed.id)
    resumed = launch(prepare(recipe, ref, params, workspace=ws), Topology(), resume=crashed.id)
    assert resumed.status is RunStatus.FINISHED and resumed.run_id == crashed.id
    run = get_run(db, crashed.id)
    assert run.status is RunStatus.FINISHED and run.tags["hone.resumed_at_step"] == "24"
    total = int(run.params["total_steps"])
    assert [m.step for m in metric_history(db, run.id, "train/loss")] == list(range(1, total + 1))
    first, second = _weights(ws, straight.run_id), _weights(ws, crashed.id)
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-5, atol=1e-6)
    assert resumed.metrics["val/loss"] == pytest.approx(straight.metrics["val/loss"], rel=1e-5)


def _refused_while_another_process_writes(
    ws: Workspace, ref: str, recipe: str, params: dict[str, int], run_id: str
) -> None:
    """A run another living process on this machine is journaling (a worker whose
    launcher was just killed) is not resumed: two trainings would write one run."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, hone\n"
            f"run = hone.start_run(run_id={run_id!r}, workspace={str(ws.home)!r})\n"
            "run.log_metric('held', 1.0)\n"
            "print('attached', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "attached"
        with pytest.raises(UserError, match="still being written by a living process"):
            launch(prepare(recipe, ref, params, workspace=ws), Topology(), resume=run_id)
    finally:
        holder.kill()
        holder.communicate()
    hone.sync(workspace=ws)  # what the killed holder journaled


def _runs(db: object) -> list:  # type: ignore[type-arg]
    from hone.tracking.queries import search_runs

    return search_runs(db, max_results=100)  # type: ignore[arg-type]


def test_a_nan_loss_fails_the_run_naming_the_step(
    sqlite_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, recipe = digits(sqlite_workspace), faulty_recipe(tmp_path)
    monkeypatch.setenv("NAN_AT", "7")
    outcome = hone.train.train(recipe, ref, params={"epochs": 1}, workspace=sqlite_workspace)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None and "became nan at step 7" in outcome.error
    run = get_run(database_for(sqlite_workspace.store_uri), outcome.run_id)
    assert run.status is RunStatus.FAILED and "step 7" in run.tags["hone.error"]


def test_a_loop_of_ones_own_uses_the_helpers(sqlite_workspace: Workspace) -> None:
    """The documented way without the standard loop: loader, save_checkpoint, load_latest."""
    ws = sqlite_workspace
    version = hone.data.get(digits(ws), workspace=ws)
    model = torch.nn.Linear(64, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with hone.start_run("own-loop", workspace=ws) as run:
        ctx = hone.train.init_distributed()
        assert ctx.world_size == 1 and hone.train.is_main()
        for x, y in hone.data.loader(version, "train", 128):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x.float()), y.long()).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        saved = hone.train.save_checkpoint(model, optimizer, step=12, metrics={"m": 1.0})
        assert saved is not None and saved.step == 12
    fresh = torch.nn.Linear(64, 10)
    restored = hone.train.load_latest(fresh, run=run.id, workspace=ws)
    assert restored is not None and restored.step == 12
    torch.testing.assert_close(fresh.weight, model.weight)


def test_a_corrupt_checkpoint_falls_back_to_the_one_before(sqlite_workspace: Workspace) -> None:
    ws = sqlite_workspace
    model = torch.nn.Linear(4, 2)
    with hone.start_run("ckpt", workspace=ws) as run:
        hone.train.save_checkpoint(model, step=1, keep_last=5)
        first = model.weight.detach().clone()
        with torch.no_grad():
            model.weight.add_(1.0)
        last = hone.train.save_checkpoint(model, step=2, keep_last=5)
    assert last is not None
    blob = open_blob_store(ws.blob_uri)._path(last.weights)  # type: ignore[attr-defined]
    blob.chmod(0o644)
    blob.write_bytes(b"not safetensors")
    fresh = torch.nn.Linear(4, 2)
    restored = hone.train.load_latest(fresh, run=run.id, workspace=ws)
    assert restored is not None and restored.step == 1 and restored.skipped == [2]
    torch.testing.assert_close(fresh.weight, first)


def test_class_labels_that_are_not_0_to_k_train(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    """Labels 3 and 7 are classes 0 and 1 to the loss (the loader maps them)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    y = np.where(x[:, 0] > 0, 7, 3)
    np.savez(tmp_path / "two.npz", x=x, y=y)
    version = hone.data.import_dataset(
        "two", tmp_path / "two.npz", split="train=0.75,test=0.25", workspace=sqlite_workspace
    )
    assert version.manifest.classes == (3, 7)
    outcome = hone.train.train(
        "builtin:mlp", version.ref, params={"epochs": 5}, workspace=sqlite_workspace
    )
    assert outcome.status is RunStatus.FINISHED, outcome.error
    assert outcome.metrics["val/acc"] > 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epoch": "x"}, "epoch 'x'"),
        ({"epoch": -5}, "epoch -5"),
        ({"batch": 1.5}, "batch 1.5"),
        ({"keep_last": 0}, "keep_last 0"),
        ({"keep_best": -1}, "keep_best -1"),
        ({"best_mode": "bogus"}, "best_mode 'bogus'"),
        ({"step": 2**63}, "step"),
    ],
)
def test_save_checkpoint_refuses_bad_arguments_before_writing(
    sqlite_workspace: Workspace, kwargs: dict[str, object], message: str
) -> None:
    """Found by the hostile pass: epoch="x" was stored and then broke the run's index."""
    from hone.errors import ValidationError

    model = torch.nn.Linear(2, 2)
    with (
        hone.start_run("bad-ckpt", workspace=sqlite_workspace) as run,
        pytest.raises(ValidationError, match=message),
    ):
        hone.train.save_checkpoint(model, **{"step": 1, **kwargs})  # type: ignore[arg-type]
    db = database_for(sqlite_workspace.store_uri)
    assert list_checkpoints(db, run.id) == []
