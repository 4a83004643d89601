"""``hone tune`` interrupted: kill -9 of every process or of the study's own, Ctrl-C, a
signal at the moment a trial is recorded, a worker killed outright, a study half created,
a grid point cut short; and ``--resume`` afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import optuna
import pytest

import hone
from hone.config import Workspace
from hone.tracking.tracker import get_tracker
from hone.tune import studies as records
from hone.tune.study import RUN_ATTR
from tests.train.helpers import digits
from tests.tune.helpers import (
    descendants,
    hone_cli,
    running_trials,
    trials_of,
    wait_for,
)

pytestmark = pytest.mark.slow


def test_an_interrupted_grid_point_runs_again_on_resume(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna's grid counts a failed point as visited: hone queues an interrupted one
    again, so every point runs once and none twice."""
    from hone.tune import tune
    from hone.tune.objectives import RecipeTrials

    data = digits(sqlite_workspace)
    real = RecipeTrials.__call__
    calls: list[int] = []

    def interrupt_the_second(self: RecipeTrials, trial: Any, study: Any) -> Any:
        calls.append(trial.number)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, trial, study)

    space = {"lr": [0.01, 0.003, 0.001]}
    args: dict[str, Any] = {
        "sampler": "grid", "space": space, "params": {"epochs": 1}, "study": "gridcut",
        "workspace": sqlite_workspace,
    }  # fmt: skip
    monkeypatch.setattr(RecipeTrials, "__call__", interrupt_the_second)
    first = tune("builtin:mlp", data, **args)
    assert first.state == "interrupted"
    monkeypatch.setattr(RecipeTrials, "__call__", real)
    done = tune("builtin:mlp", data, resume=True, **args)
    assert done.state == "complete"
    trials = trials_of(sqlite_workspace, "gridcut")
    complete = sorted(t.params["lr"] for t in trials if t.state.name == "COMPLETE")
    assert complete == [0.001, 0.003, 0.01]


def test_a_signal_while_a_finished_trial_is_recorded_does_not_lose_it(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C as the trial's run ends: the trial is recorded complete, then the study
    stops (interrupted)."""
    import signal

    from hone.tracking.run import ActiveRun
    from hone.tune import tune

    data = digits(sqlite_workspace)
    real = ActiveRun.end

    def end_then_signal(self: ActiveRun, status: Any = hone.RunStatus.FINISHED) -> None:
        if status is hone.RunStatus.FINISHED and self.name.endswith("-0"):
            os.kill(os.getpid(), signal.SIGINT)
        real(self, status)

    monkeypatch.setattr(ActiveRun, "end", end_then_signal)
    out = tune(
        "builtin:mlp", data, trials=3, params={"epochs": 1}, study="late",
        workspace=sqlite_workspace,
    )  # fmt: skip
    assert out.state == "interrupted"
    (trial,) = trials_of(sqlite_workspace, "late")
    assert trial.state == optuna.trial.TrialState.COMPLETE
    run = hone.get_run(trial.system_attrs[RUN_ATTR], workspace=sqlite_workspace)
    assert run.status is hone.RunStatus.FINISHED


def test_a_worker_killed_outright_hands_its_trial_back_to_the_others(
    sqlite_workspace: Workspace, quality: str
) -> None:
    """kill -9 of one of two workers: its trial fails as interrupted at once, its budget
    goes back, and the other worker runs the study to its end."""
    ws = sqlite_workspace
    data = digits(ws)
    command = [
        sys.executable, "-m", "hone.cli.main", "tune", quality, "--data", data,
        "--trials", "4", "--parallel", "2", "--pruner", "none", "-p", "epochs=1",
        "--study", "onedied", "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        env={**os.environ, "HONE_HOME": str(ws.home), "TUNE_PAUSE": "0.1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    wait_for(lambda: len(running_trials(ws, "onedied", training=True)) == 2, 60, "training")
    db = get_tracker(ws).db
    victim_worker = running_trials(ws, "onedied", training=True)[0].system_attrs["hone.worker"]
    (victim,) = [w for w in records.study_workers(db, "onedied") if w.worker == victim_worker]
    for pid in [*descendants(victim.pid)[::-1], victim.pid]:
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    outcome = json.loads(out)
    assert outcome["state"] == "complete"
    assert outcome["trials"]["complete"] == 4 and outcome["trials"]["interrupted"] == 1
    assert "was killed by SIGKILL" in err


def test_a_half_created_study_is_listed_and_taken_over_by_resume(
    sqlite_workspace: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its creator died after recording the name, before Optuna's record and the run."""
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    data = digits(sqlite_workspace)
    base = ["tune", "builtin:mlp", "--data", data, "--trials", "2", "-p", "epochs=1"]
    assert hone_cli(capsys, *base, "--study", "half", "--json")[0] == 0
    config = records.get_study(get_tracker(sqlite_workspace).db, "half").config
    db = get_tracker(sqlite_workspace).db
    assert records.create_study(db, "orphan", config, 2)
    monkeypatch.setattr("hone.tune.study.CREATION_WAIT_S", 0.2)
    code, out, err = hone_cli(capsys, "tune", "list", "--json")
    assert code == 0, err
    assert {s["name"]: s["created"] for s in json.loads(out)} == {"half": True, "orphan": False}
    code, _, err = hone_cli(capsys, "tune", "show", "orphan")
    assert code == 3 and "never completely created" in err and "--resume" in err
    code, _, err = hone_cli(capsys, *base, "--study", "orphan")
    assert code == 2 and "--resume takes it over" in err
    code, out, err = hone_cli(capsys, *base, "--study", "orphan", "--resume", "--json")
    assert code == 0, err
    outcome = json.loads(out)
    assert outcome["state"] == "complete" and outcome["trials"]["complete"] == 2
    assert hone.get_run(outcome["run_id"], workspace=sqlite_workspace).tags["hone.study"] == (
        "orphan"
    )


@pytest.mark.parametrize("killed", ["everything", "the study process", "ctrl-c"])
def test_kill_9_then_resume_keeps_finished_trials_and_gives_the_running_ones_back(
    sqlite_workspace: Workspace, quality: str, killed: str
) -> None:
    """SIGKILL while trials run: to every process of the study (a machine lost: its
    trials are left running), or to the study's own process only (its workers see it go
    and fail their trials as interrupted). ``--resume`` keeps the finished trials, fails
    any left running as interrupted, gives their budget back and completes the study with
    exactly its number of trials."""
    ws = sqlite_workspace
    data = digits(ws)
    command = [
        sys.executable, "-m", "hone.cli.main", "tune", quality, "--data", data,
        "--trials", "4", "--parallel", "2", "--pruner", "none", "-p", "epochs=2",
        "--study", "cut", "--json",
    ]  # fmt: skip
    env = {**os.environ, "HONE_HOME": str(ws.home)}
    slow = subprocess.Popen(
        command,
        env={**env, "TUNE_PAUSE": "0.2"},  # ~9 s a trial
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = get_tracker(ws).db

    def running(training: bool = False) -> int:
        return len(running_trials(ws, "cut", training=training))

    wait_for(lambda: running(training=True) == 2, 60, "two trials training")
    # The workers first: killed after their parent, they would hear of its death and stop
    # in good order.
    if killed == "ctrl-c":  # the study stops in good order
        slow.send_signal(signal.SIGINT)
        assert slow.wait(timeout=60) == 130
        study_run = hone.get_run(records.get_study(db, "cut").run_id, workspace=ws)
        assert study_run.status is hone.RunStatus.KILLED
    else:
        victims = (descendants(slow.pid)[::-1] if killed == "everything" else []) + [slow.pid]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        slow.communicate()
    if killed == "everything":
        before = trials_of(ws, "cut")
        assert sum(t.state == optuna.trial.TrialState.RUNNING for t in before) == 2
    else:  # the workers stop on their own, failing their trials as interrupted
        wait_for(lambda: running() == 0, 120, "the workers to stop")
        before = trials_of(ws, "cut")
        assert sum(bool(t.system_attrs.get("hone.interrupted")) for t in before) == 2
        # Their budget comes back right after each trial's end is recorded (a moment later
        # than the trial stops running, on a loaded machine).
        wait_for(lambda: records.get_study(db, "cut").claimed == 0, 30, "their budget back")
    done = subprocess.run(
        [*command, "--resume"], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["opened"] == "resumed" and outcome["state"] == "complete"
    after = trials_of(ws, "cut")
    states = [t.state for t in after]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    interrupted = [t for t in after if t.system_attrs.get("hone.interrupted")]
    assert len(interrupted) == 2 and optuna.trial.TrialState.RUNNING not in states
    for old in before:  # finished trials are kept as they were
        if old.state == optuna.trial.TrialState.COMPLETE:
            assert after[old.number].value == old.value
    assert records.get_study(db, "cut").claimed == 4
    for t in interrupted:  # the killed trials' runs are not left running
        run = hone.get_run(t.system_attrs[RUN_ATTR], workspace=ws)
        assert run.status is hone.RunStatus.KILLED
    study_run = hone.get_run(outcome["run_id"], workspace=ws)
    assert study_run.status is hone.RunStatus.FINISHED
