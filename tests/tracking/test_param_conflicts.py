"""Params are fixed across processes too (issue 6, fault 15): the store refuses a second,
different value, and the writer that sent it is told."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hone
from hone.config import Workspace
from hone.tracking.tracker import get_tracker

ATTACH_AND_LOG = """
import os, sys, time, hone
from hone.errors import ConflictError
run = hone.start_run(run_id=sys.argv[1])
go = sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.001)
try:
    run.log_param("seed", sys.argv[2])
    print("ok")
except ConflictError as exc:
    print("conflict", exc)
run.end()
"""


def _attach(workspace: Workspace, run_id: str, seed: str, go: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HONE_HOME": str(workspace.home), "HONE_STORE_URI": workspace.store_uri}
    return subprocess.Popen(
        [sys.executable, "-c", ATTACH_AND_LOG, run_id, seed, str(go)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_two_processes_logging_one_param_differently_one_is_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    with hone.start_run("shared", workspace=workspace) as owner:
        owner.fetch()
        go = tmp_path / "go"
        procs = [_attach(workspace, owner.id, seed, go) for seed in ("1", "2")]
        go.touch()
        outcomes = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            outcomes.append(out.strip())
    assert sorted(o.split()[0] for o in outcomes) == ["conflict", "ok"]
    winner = "1" if outcomes[0] == "ok" else "2"
    loser = next(o for o in outcomes if o.startswith("conflict"))
    assert f"already '{winner}'" in loser
    assert hone.get_run(owner.id, workspace=workspace).params == {"seed": winner}


def test_the_creators_params_win_over_a_process_that_attaches_early(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A process that continues a run waits for the run to reach the store; the params a
    run starts with reach it together with the run, so they are there first."""
    get_tracker(workspace).flusher.interval = 3600
    run = hone.start_run("first", params={"seed": "1"}, workspace=workspace)
    go = tmp_path / "go"
    go.touch()
    other = _attach(workspace, run.id, "2", go)  # waits: the run is not in the store yet
    run.fetch()  # now it is, with seed=1
    out, err = other.communicate(timeout=60)
    assert other.returncode == 0 and out.startswith("conflict"), err
    assert "already '1'" in out
    run.log_param("lr", "0.1")  # a param logged later is claimed in the store at once
    run.end()
    assert hone.get_run(run.id, workspace=workspace).params == {"seed": "1", "lr": "0.1"}


def test_a_conflicting_param_that_reaches_the_store_second_is_set_aside_and_reported(
    workspace: Workspace, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the store was out of reach as a param was logged, the journal carries it; if
    another value got there first, this one is set aside and its writer told."""
    from hone.errors import StoreUnavailableError
    from hone.tracking.sink import StoreSink

    get_tracker(workspace).flusher.interval = 3600
    run = hone.start_run("first", workspace=workspace)
    run.fetch()

    def unreachable(self: StoreSink, run_id: str, values: dict[str, str]) -> dict[str, str]:
        raise StoreUnavailableError("down for the test")

    monkeypatch.setattr(StoreSink, "claim_params", unreachable)
    run.log_param("seed", "1")  # journaled only
    monkeypatch.undo()
    get_tracker(workspace).sink.claim_params(run.id, {"seed": "2"})  # another process's
    with caplog.at_level(logging.WARNING, "hone.tracking"):
        got = run.fetch()
    assert got.params == {"seed": "2"}  # the first value to reach the store stays
    assert [q.kind for q in run.quarantined] == ["params"]
    assert "already '2'" in run.quarantined[0].reason and "set aside" in caplog.text
    run.end()
    assert hone.get_run(run.id, workspace=workspace).params == {"seed": "2"}
