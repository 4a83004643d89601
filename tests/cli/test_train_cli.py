"""``hone train`` and ``hone runs checkpoints`` from the command line, and every kind of bad
input they take: one clear line, exit 2 or 3, nothing started, nothing written."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from hone.config import Workspace
from hone.store.database import database_for
from hone.tracking.queries import get_run, search_runs
from tests.cli.test_cli import hone_cli
from tests.train.helpers import digits


@pytest.fixture
def home(sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    return sqlite_workspace


def test_train_prints_the_run_and_its_checkpoints(
    home: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = digits(home)
    code, out, err = hone_cli(
        capsys, "train", "builtin:mlp", "--data", ref, "-p", "epochs=2", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "finished" and result["error"] is None
    assert result["metrics"]["val/acc"] > 0.85
    assert [c["epoch"] for c in result["checkpoints"]] == [1, 2]
    code, out, err = hone_cli(capsys, "runs", "checkpoints", result["run_id"][:10], "--json")
    assert code == 0, err
    assert [c["step"] for c in json.loads(out)] == [c["step"] for c in result["checkpoints"]]
    code, out, _ = hone_cli(capsys, "runs", "checkpoints", result["run_id"])
    assert "2 checkpoint(s)" in out and "val/acc" in out
    # A finished run has nothing to resume: refused, the run untouched.
    db = database_for(home.store_uri)
    before = get_run(db, result["run_id"])
    code, out, err = hone_cli(capsys, "train", "--resume", result["run_id"], "--json")
    assert code != 0 and "finished: there is nothing to resume" in err, err
    after = get_run(db, result["run_id"])
    assert (after.status, after.end_time) == (before.status, before.end_time)
    assert len(search_runs(db, max_results=10)) == 1


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["builtin:nope"], "no such builtin"),
        (["no_such_mod_q"], "no module named 'no_such_mod_q'"),
        (["builtin:cnn", "--data", "iris@latest"], "builtin:cnn needs image-shaped"),
        (["builtin:mlp", "-p", "nosuch=1"], "unknown param 'nosuch'"),
        (["builtin:mlp", "-p", "lr=fast"], "lr is a number"),
        (["builtin:mlp", "-p", "epochs"], "write name=value"),
        (["builtin:mlp", "-p", "batch_size=65", "--nproc-per-node", "2"], "must divide"),
        (["builtin:mlp", "-p", "val_split=holdout"], "val_split='holdout'"),
        (["builtin:mlp", "-p", "train_split=nope"], "train_split='nope'"),
        (["builtin:mlp", "--nproc-per-node", "0"], "--nproc-per-node 0"),
        (["builtin:mlp", "--nnodes", "2"], "needs --rdzv-endpoint"),
        (["builtin:mlp", "--nnodes", "2", "--rdzv-endpoint", "nohost"], "give HOST:PORT"),
        (["builtin:mlp", "--nnodes", "2", "--rdzv-endpoint", "h:99999"], "give HOST:PORT"),
        (["builtin:mlp", "--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"], "0 to 1"),
        (["builtin:mlp", "--max-restarts", "-1"], "--max-restarts -1"),
        (["builtin:mlp", "--rdzv-id", "a b"], "--rdzv-id"),
        (["builtin:mlp", "--local-addr", "bad host!"], "--local-addr"),
        (["builtin:mlp", "--data", "nodata@latest"], "nodata"),
        ([], "give a RECIPE and --data"),
        (["--resume", "0123456789abcdef0123456789abcdef"], "no run"),
        (["builtin:mlp", "--resume", "abc"], "give none of them"),
    ],
)
def test_bad_input_is_one_line_and_starts_nothing(
    home: Workspace, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    import hone.data

    for name in ("iris", "digits"):
        hone.data.import_dataset(
            name, f"sklearn:{name}", split="train=0.8,test=0.2", workspace=home
        )
    if "--data" not in args and args and not args[0].startswith("--"):
        args = [*args, "--data", "digits@latest"]
    code, out, err = hone_cli(capsys, "train", *args)
    assert code in (2, 3, 4), (code, out, err)
    assert message in err + out, err + out
    assert "Traceback" not in err + out
    assert search_runs(database_for(home.store_uri), max_results=10) == []


def test_a_rendezvous_port_in_use_is_named(
    home: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = digits(home)
    with _busy_port() as sock:
        port = sock.getsockname()[1]
        code, _, err = hone_cli(
            capsys,
            "train",
            "builtin:mlp",
            "--data",
            ref,
            "--nnodes",
            "2",
            "--rdzv-endpoint",
            f"127.0.0.1:{port}",
        )
    assert code != 0 and f"127.0.0.1:{port}" in err and "in use" in err
    assert "Traceback" not in err


def test_resuming_a_run_not_started_by_train_is_refused(
    home: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import hone

    with hone.start_run("plain", workspace=home) as run:
        run.log_metric("m", 1.0)
    code, _, err = hone_cli(capsys, "train", "--resume", run.id)
    assert code != 0 and "not started by hone train" in err


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("torch.nn.Linear(64, 5)", "the model gives (2, 5); the standard loss wants (2, 10)"),
        ("torch.nn.Linear(10, 10)", "the model does not take digits@"),
        ("torch.nn.Sequential(torch.nn.Linear(64, 10), torch.nn.Flatten(0))", "gives (20,)"),
    ],
)
def test_a_model_that_does_not_fit_the_data_is_refused_before_launch(
    home: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path, model: str, message: str
) -> None:
    ref = digits(home)
    recipe = tmp_path / "wrong.py"
    recipe.write_text(f"import torch\ndef model(params, data):\n    return {model}\n")
    code, _, err = hone_cli(capsys, "train", str(recipe), "--data", ref)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert search_runs(database_for(home.store_uri), max_results=10) == []


def test_a_train_split_smaller_than_the_job_is_refused(
    home: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import numpy as np

    import hone.data

    np.savez(tmp_path / "tiny.npz", x=np.eye(3, dtype=np.float32), y=np.array([0, 1, 0]))
    hone.data.import_dataset(
        "tiny", tmp_path / "tiny.npz", split="train=0.34,test=0.66", workspace=home
    )
    code, _, err = hone_cli(
        capsys, "train", "builtin:mlp", "--data", "tiny@latest", "--nproc-per-node", "2"
    )
    assert code == 2 and "has 1 row(s): fewer than the job's 2 processes" in err, err


def test_a_node_pointed_at_something_that_is_not_a_rendezvous_is_told_so(
    home: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the hostile pass: node rank 1 given a port where another server listens
    ended in torchrun's traceback (and PyTorch's C++ stacks for every retry)."""
    ref = digits(home)
    with _busy_port() as sock:  # listens, never speaks c10d's store protocol
        port = sock.getsockname()[1]
        code, _, err = hone_cli(
            capsys,
            "train",
            "builtin:mlp",
            "--data",
            ref,
            "--nnodes",
            "2",
            "--node-rank",
            "1",
            "--rdzv-endpoint",
            f"127.0.0.1:{port}",
        )
    assert code != 0 and "something listens there, but not torchrun's rendezvous" in err, err
    assert "Traceback" not in err
