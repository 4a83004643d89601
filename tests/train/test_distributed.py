"""Synchronous data-parallel training through torchrun's real processes, on this machine."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import hone.data
import hone.train
from hone.blobs import open_blob_store
from hone.config import Workspace
from hone.store.database import database_for
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.entities import RunStatus
from hone.tracking.queries import get_run, metric_history, search_runs
from hone.train.builtin import MLP
from hone.train.params import declare, resolve
from hone.train.recipes import data_spec
from tests.train.helpers import digits, faulty_recipe

pytestmark = pytest.mark.slow

PER_EPOCH = -(-(1437 // 2) // 32)  # each of 2 ranks: 718 samples in batches of 32


def _accuracy_of_last_checkpoint(ws: Workspace, run_id: str, ref: str) -> float:
    """The final weights evaluated here, on every test sample, in one process."""
    from safetensors.torch import load

    version = hone.data.get(ref, workspace=ws)
    db, blobs = database_for(ws.store_uri), open_blob_store(ws.blob_uri)
    recipe = MLP()
    model = recipe.model(resolve(declare(recipe.params, "builtin:mlp"), {}), data_spec(version))
    model.load_state_dict(load(blobs.get_bytes(list_checkpoints(db, run_id)[-1].weights)))
    model.eval()
    x, y = version.to_numpy("test")
    with torch.no_grad():
        predicted = model(torch.from_numpy(np.asarray(x, dtype=np.float32))).argmax(1).numpy()
    return float((predicted == y).mean())


def test_two_processes_train_one_run(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    ws = sqlite_workspace
    ref = digits(ws)
    outcome = hone.train.train(
        "builtin:mlp", ref, params={"epochs": 2}, nproc_per_node=2, workspace=ws
    )
    assert outcome.status is RunStatus.FINISHED, outcome.error
    db = database_for(ws.store_uri)
    run = get_run(db, outcome.run_id)
    assert run.status is RunStatus.FINISHED
    assert run.params["world_size"] == "2" and run.params["backend"] == "gloo"
    assert run.params["threads_per_rank"] == str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert len(json.loads(run.tags["hone.hosts"])) == 2
    steps = [m.step for m in metric_history(db, run.id, "train/loss")]
    assert steps == list(range(1, 2 * PER_EPOCH + 1))  # one series, logged once per step
    # Every test sample counted exactly once across the two ranks (360 is not even
    # divided by batches): the logged accuracy is the final model's on the whole split.
    logged = metric_history(db, run.id, "val/acc")[-1].value
    assert logged == pytest.approx(_accuracy_of_last_checkpoint(ws, run.id, ref), abs=1e-9)
    assert len(search_runs(db, max_results=10)) == 1  # one job, one run


def test_a_killed_rank_restarts_and_ends_as_if_uninterrupted(
    sqlite_workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    ws = sqlite_workspace
    ref, recipe = digits(ws), faulty_recipe(tmp_path)
    params = {"epochs": 2, "checkpoint_every": 8, "keep_last": 5}
    straight = hone.train.train(recipe, ref, params=params, nproc_per_node=2, workspace=ws)
    assert straight.status is RunStatus.FINISHED, straight.error
    monkeypatch.setenv("KILL_AT", "30")
    monkeypatch.setenv("KILL_RANK", "1")
    capfd.readouterr()
    killed = hone.train.train(
        recipe, ref, params=params, nproc_per_node=2, max_restarts=1, workspace=ws
    )
    assert killed.status is RunStatus.FINISHED, killed.error
    # The surviving rank says in one line why it stopped: no traceback of its own.
    said = capfd.readouterr().err
    assert "hone train (rank 0): lost contact with the job's other processes" in said
    # reset or closed: whether the killed peer left unread data in its socket
    assert re.search(r"Connection (reset|closed) by peer", said) and "Traceback" not in said
    db = database_for(ws.store_uri)
    run = get_run(db, killed.run_id)
    assert run.tags["hone.resumed_at_step"] == "24"  # the last checkpoint before step 30
    steps = [m.step for m in metric_history(db, run.id, "train/loss")]
    assert steps == list(range(1, 2 * PER_EPOCH + 1))
    for key in ("val/loss", "val/acc", "train/epoch_loss"):
        assert killed.metrics[key] == pytest.approx(straight.metrics[key], rel=1e-4), key


@pytest.mark.parametrize(("processes", "sig"), [(2, signal.SIGINT), (1, signal.SIGTERM)])
def test_interrupting_the_launcher_ends_the_run_killed(
    sqlite_workspace: Workspace, processes: int, sig: signal.Signals
) -> None:
    ws = sqlite_workspace
    ref = digits(ws)
    command = [sys.executable, "-m", "hone.cli.main", "-w", str(ws.home), "train"]
    command += ["builtin:mlp", "--data", ref, "--nproc-per-node", str(processes)]
    command += ["-p", "epochs=500"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    db = database_for(ws.store_uri)
    deadline = time.monotonic() + 120
    run = None
    while time.monotonic() < deadline:
        found = search_runs(db, max_results=1)
        if found and "train/loss" in found[0].metrics:
            run = found[0]
            break
        time.sleep(0.5)
    assert run is not None, "training never started"
    process.send_signal(sig)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 130, output
    assert get_run(db, run.id).status is RunStatus.KILLED
    leftover = subprocess.run(
        ["pgrep", "-f", "hone.train.worker"], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == "", "workers outlived their launcher"


def test_workers_that_stop_before_training_fail_the_run(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    """A recipe that imports in the launcher but not in the workers: they exit cleanly
    (a fault of the job is not retried), and the run must fail, not finish."""
    ws = sqlite_workspace
    ref = digits(ws)
    recipe = tmp_path / "only_here.py"
    recipe.write_text(
        "import os\n"
        "if 'RANK' in os.environ:\n"
        "    raise ImportError('not in a worker')\n"
        "from hone.train.builtin import MLP as Only\n"
    )
    outcome = hone.train.train(f"{recipe}:Only", ref, nproc_per_node=2, workspace=ws)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == "the workers stopped before training finished: see the log above"
    assert get_run(database_for(ws.store_uri), outcome.run_id).status is RunStatus.FAILED


def test_a_launcher_killed_outright_takes_its_workers_with_it(
    sqlite_workspace: Workspace,
) -> None:
    """kill -9 gives the launcher no chance to stop anything: Linux stops torchrun, which
    stops its workers, and the run ends killed. While a worker still lives, the run may
    not be resumed (two trainings would write one run)."""
    ws = sqlite_workspace
    ref = digits(ws)
    command = [sys.executable, "-m", "hone.cli.main", "-w", str(ws.home), "train"]
    command += ["builtin:mlp", "--data", ref, "--nproc-per-node", "2", "-p", "epochs=500"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = database_for(ws.store_uri)
    deadline = time.monotonic() + 120
    run = None
    while time.monotonic() < deadline and run is None:
        found = search_runs(db, max_results=1)
        if found and "train/loss" in found[0].metrics:
            run = found[0]
        time.sleep(0.5)
    assert run is not None, "training never started"
    process.kill()
    process.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _training_processes():
        time.sleep(0.2)
    assert not _training_processes(), "workers outlived their launcher"
    hone.sync(workspace=ws)
    killed = get_run(db, run.id)
    assert killed.status is RunStatus.KILLED
    # It ran as long as its workers logged, not as long as the launcher wrote (no time).
    last = max(m.timestamp for m in metric_history(db, run.id, "train/loss"))
    assert killed.end_time is not None and killed.end_time >= last > killed.start_time


def _training_processes() -> list[str]:
    found = subprocess.run(
        ["pgrep", "-f", "torch.distributed.run|hone.train.worker"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.split()


def test_a_rank_that_fails_alone_fails_the_job_at_once(
    sqlite_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the hostile pass: rank 0 failing alone (its recipe raised, or its
    checkpoint could not be written) waited in a barrier while rank 1 waited in the
    gradient all-reduce: the job hung for gloo's 5-minute timeout."""
    ws = sqlite_workspace
    ref, recipe = digits(ws), faulty_recipe(tmp_path)
    monkeypatch.setenv("CRASH_AT", "5")
    monkeypatch.setenv("CRASH_RANK", "0")
    started = time.monotonic()
    outcome = hone.train.train(recipe, ref, params={"epochs": 2}, nproc_per_node=2, workspace=ws)
    assert outcome.status is RunStatus.FAILED
    assert time.monotonic() - started < 90
