"""The examples in docs/training.md run as written: a recipe file through ``hone train``,
and a loop of one's own under torchrun with two processes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hone.config import Workspace
from hone.store.database import database_for
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.queries import search_runs
from tests.train.helpers import digits

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def example(name: str) -> str:
    """The Python block of docs/training.md whose first line names ``name``."""
    for block in re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S):
        if block.startswith(f"# {name}"):
            return str(block)
    raise AssertionError(f"docs/training.md has no example {name}")


def _run(command: list[str], ws: Workspace, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"HONE_HOME": str(ws.home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_recipe_example_trains(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    ws = sqlite_workspace
    ref = digits(ws)
    (tmp_path / "my_recipe.py").write_text(example("my_recipe.py"))
    done = _run(
        [
            sys.executable,
            "-m",
            "hone.cli.main",
            "train",
            "my_recipe.py:Wide",
            "--data",
            ref,
            "-p",
            "hidden=64",
            "-p",
            "epochs=2",
            "--json",
        ],
        ws,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (run,) = search_runs(database_for(ws.store_uri), max_results=5)
    assert run.params["hidden"] == "64" and run.params["dropout"] == "0.2"
    assert run.metrics["val/acc"].value > 0.8


def test_the_own_loop_example_runs_under_torchrun(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    ws = sqlite_workspace
    digits(ws)  # digits@latest is the normalized version the example reads
    (tmp_path / "own_loop.py").write_text(example("own_loop.py"))
    done = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            "own_loop.py",
        ],
        ws,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    db = database_for(ws.store_uri)
    (run,) = search_runs(db, max_results=5)  # rank 0 alone tracked
    assert run.status.value == "finished" and run.metrics["train/loss"].step == 4
    assert [c.step for c in list_checkpoints(db, run.id)] == [4, 5]
