"""``hone tune`` end to end: trials trained by hone's loop as child runs, in one process
and in parallel ones; pruning on the metric each epoch reports; the best trial's best
checkpoint as the study's result; bad input as one line; kill -9 and --resume; two
``hone tune`` processes on one study on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

import hone
from hone.cli.main import main
from hone.cli.state import state
from hone.config import Workspace
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.tracker import get_tracker
from hone.tune import studies as records
from hone.tune.storage import study_storage
from hone.tune.study import RUN_ATTR
from tests.train.helpers import digits

pytestmark = pytest.mark.slow

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


@pytest.fixture
def home(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("HONE_HOME", str(workspace.home))
    return workspace


@pytest.fixture
def quality(tmp_path: Path) -> str:
    path = tmp_path / "quality.py"
    path.write_text(QUALITY)
    return f"{path}:Quality"


def hone_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    state.synced = False
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _trials(ws: Workspace, name: str) -> list[optuna.trial.FrozenTrial]:
    db = get_tracker(ws).db
    return optuna.load_study(study_name=name, storage=study_storage(db, name)).get_trials()


def test_a_study_of_parallel_trials_records_runs_checkpoints_and_its_result(
    home: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    data = digits(home)
    code, out, err = hone_cli(
        capsys, "tune", "builtin:mlp", "--data", data, "--trials", "4", "--parallel", "2",
        "--pruner", "none", "-p", "epochs=2", "--study", "mlp", "--seed", "7", "--json",
    )  # fmt: skip
    assert code == 0, err
    outcome = json.loads(out)
    assert outcome["state"] == "complete" and outcome["trials"]["complete"] == 4
    trials = _trials(home, "mlp")
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    # Parallel processes draw their own params (no two trials alike).
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 4
    for t in trials:
        run = hone.get_run(t.system_attrs[RUN_ATTR], workspace=home)
        assert run.parent_run_id == outcome["run_id"]
        assert run.tags["hone.study"] == "mlp" and run.tags["hone.trial"] == str(t.number)
        for key, value in t.params.items():
            assert run.params[key] == str(value)
        assert run.params["epochs"] == "2" and run.params["best_metric"] == "val/acc"
        history = hone.get_metric_history(run.id, "val/acc", workspace=home)
        assert len(history) == 2  # both epochs, reported to Optuna as steps 1 and 2
        assert sorted(t.intermediate_values) == [1, 2]
        assert [v for _, v in sorted(t.intermediate_values.items())] == [m.value for m in history]
        assert t.value == max(m.value for m in history)  # its best epoch
    best = outcome["best"]
    assert best["value"] == max(t.value for t in trials if t.value is not None)
    checkpoint = best["checkpoint"]
    stored = {c.step: c for c in list_checkpoints(get_tracker(home).db, best["run_id"])}
    assert stored[checkpoint["step"]].metrics["val/acc"] == best["value"]
    study_run = hone.get_run(outcome["run_id"], workspace=home)
    assert study_run.tags["hone.best_checkpoint"] == f"{best['run_id']}:{checkpoint['step']}"
    assert records.get_study(get_tracker(home).db, "mlp").result == best

    code, out, err = hone_cli(capsys, "tune", "show", "mlp", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert [t["state"] for t in shown["trials"]] == ["complete"] * 4
    assert all(t["duration_s"] > 0 for t in shown["trials"])
    assert set(shown["importances"]["values"]) <= set(trials[0].params)
    code, out, err = hone_cli(capsys, "tune", "show", "mlp")
    assert code == 0 and "best" in out and "trials" in out
    code, out, _ = hone_cli(capsys, "tune", "list", "--json")
    assert [s["name"] for s in json.loads(out)] == ["mlp"]
    runs = [t.system_attrs[RUN_ATTR] for t in trials[:2]]
    code, out, err = hone_cli(capsys, "runs", "compare", *runs)
    assert code == 0, err


def test_pruned_trials_stop_early_and_record_where(
    sqlite_workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    quality: str,
) -> None:
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    data = digits(sqlite_workspace)
    code, out, err = hone_cli(
        capsys, "tune", quality, "--data", data, "--trials", "6", "--pruner", "asha",
        "--sampler", "random", "--seed", "0", "--metric", "val/score", "--direction", "maximize",
        "-p", "epochs=3",
        "--study", "asha", "--json",
    )  # fmt: skip
    assert code == 0, err
    trials = _trials(sqlite_workspace, "asha")
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned and complete and len(pruned) + len(complete) == 6
    for t in pruned:
        run = hone.get_run(t.system_attrs[RUN_ATTR], workspace=sqlite_workspace)
        at = t.system_attrs["hone.pruned_at"]
        assert run.metrics["epoch"].value == at["epoch"] < 3  # it stopped before its last epoch
        assert run.metrics["val/score"].step == at["step"]
        assert run.tags["hone.stopped"].startswith("pruned by the asha pruner")
        assert run.status is hone.RunStatus.FINISHED
        # ASHA: pruned because another trial had done better at the same epoch.
        rivals = [o for o in trials if o.number < t.number and at["epoch"] in o.intermediate_values]
        assert any(o.intermediate_values[at["epoch"]] > t.params["quality"] for o in rivals)
    for t in complete:
        assert sorted(t.intermediate_values) == [1, 2, 3]
        assert t.value == pytest.approx(t.params["quality"])
    code, out, _ = hone_cli(capsys, "tune", "show", "asha")
    assert "pruned" in out and "step" in out


def test_trials_of_two_processes_each_stop_together_when_pruned(
    sqlite_workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    quality: str,
) -> None:
    """A trial may itself be data-parallel (--nproc-per-node 2, torchrun): rank 0 asks the
    pruner, both ranks stop at the same step, and the run records both ranks' last step."""
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    data = digits(sqlite_workspace)
    code, _, err = hone_cli(
        capsys, "tune", quality, "--data", data, "--trials", "4", "--pruner", "asha",
        "--sampler", "random", "--seed", "0", "--metric", "val/score", "--direction",
        "maximize", "-p", "epochs=3", "--nproc-per-node", "2", "--study", "ddp", "--json",
    )  # fmt: skip
    assert code == 0, err
    trials = _trials(sqlite_workspace, "ddp")
    assert {t.state for t in trials} == {
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.COMPLETE,
    }
    for t in trials:
        run = hone.get_run(t.system_attrs[RUN_ATTR], workspace=sqlite_workspace)
        assert run.params["world_size"] == "2"
        steps = json.loads(run.tags["hone.rank_steps"])
        assert len(steps) == 2 and steps[0] == steps[1] == run.metrics["train/loss"].step
        if t.state == optuna.trial.TrialState.PRUNED:
            assert steps[0] == t.system_attrs["hone.pruned_at"]["step"]


DEFINE_BY_RUN = """
from hone.train.builtin import MLP

class Searched(MLP):
    def search_space(self, trial):
        layers = trial.suggest_int("layers", 1, 2)
        return {"layers": layers, "hidden": trial.suggest_categorical("hidden", [32, 64])}
"""


def test_a_define_by_run_space_is_searched_by_parallel_workers(
    sqlite_workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    path = tmp_path / "searched.py"
    path.write_text(DEFINE_BY_RUN)
    data = digits(sqlite_workspace)
    code, _, err = hone_cli(
        capsys, "tune", f"{path}:Searched", "--data", data, "--trials", "3", "--parallel",
        "2", "-p", "epochs=1", "--study", "dbr", "--json",
    )  # fmt: skip
    assert code == 0, err
    for t in _trials(sqlite_workspace, "dbr"):
        assert t.state == optuna.trial.TrialState.COMPLETE
        run = hone.get_run(t.system_attrs[RUN_ATTR], workspace=sqlite_workspace)
        assert run.params["layers"] == str(t.params["layers"])
        assert run.params["hidden"] == str(t.params["hidden"])
    code, _, err = hone_cli(capsys, "tune", f"{path}:Searched", "--data", data, "--sampler", "grid")
    assert code == 2 and "grid needs a declarative search space" in err


def test_a_trial_that_raises_is_recorded_and_the_study_goes_on(
    sqlite_workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    quality: str,
) -> None:
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    monkeypatch.setenv("TUNE_FAIL_ABOVE", "0.5")
    data = digits(sqlite_workspace)
    code, _, err = hone_cli(
        capsys, "tune", quality, "--data", data, "--trials", "6", "--pruner", "none",
        "--sampler", "random", "--seed", "0", "-p", "epochs=1", "--study", "raises", "--json",
    )  # fmt: skip
    assert code == 0, err
    trials = _trials(sqlite_workspace, "raises")
    assert len(trials) == 6
    for t in trials:
        if t.params["quality"] > 0.5:
            assert t.state == optuna.trial.TrialState.FAIL
            assert "is too high" in t.system_attrs["hone.error"]
        else:
            assert t.state == optuna.trial.TrialState.COMPLETE
    assert any(t.state == optuna.trial.TrialState.FAIL for t in trials)


def test_a_metric_the_epoch_does_not_report_stops_the_study_naming_those_it_does(
    sqlite_workspace: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A metric the loop never logs is refused before the study (bad input, below); one it
    should log but an epoch did not report (here: every validation metric gone, as a
    recipe's evaluation could lose them) stops the study after that first epoch."""
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    data = digits(sqlite_workspace)
    from hone.train import loop

    real = loop._Trainer._evaluate
    monkeypatch.setattr(loop._Trainer, "_evaluate", lambda self: {})
    code, out, err = hone_cli(
        capsys, "tune", "builtin:mlp", "--data", data, "--trials", "5", "-p", "epochs=3",
        "--study", "nometric",
    )  # fmt: skip
    monkeypatch.setattr(loop._Trainer, "_evaluate", real)
    assert code == 1
    assert "--metric val/acc: the trial reports no such metric" in out
    assert "it reports epoch, lr, train/epoch_loss" in out and "Traceback" not in out + err
    trials = _trials(sqlite_workspace, "nometric")
    assert len(trials) == 1 and trials[0].state == optuna.trial.TrialState.FAIL
    run = hone.get_run(trials[0].system_attrs[RUN_ATTR], workspace=sqlite_workspace)
    assert run.metrics["epoch"].value == 1  # caught after the first epoch
    assert hone.get_run(run.parent_run_id or "", workspace=sqlite_workspace).status is (
        hone.RunStatus.FAILED
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--direction", "up"], "--direction 'up': choose one of maximize, minimize"),
        (["--sampler", "grid"], "--sampler grid cannot search lr: it is a log range"),
        (["--sampler", "bayes"], "--sampler 'bayes': choose one of tpe, random"),
        (["--pruner", "early"], "--pruner 'early'"),
        (["--trials", "0"], "--trials 0: give a whole number"),
        (["--parallel", "0"], "--parallel 0"),
        (["--timeout", "-5"], "--timeout -5.0"),
        (["--study", "a b"], "study name 'a b'"),
        (["--resume"], "--resume continues a study: name it with --study NAME"),
        (["--space", "{}"], "the search space of --space is empty"),
        (["--space", '{"lr": {"low": 1}}'], "--space, lr: a range has low and high"),
        (["--space", '{"nope": [1, 2]}'], "--space searches 'nope', which is not a param"),
        (["--space", '{"hidden": [1.5, 2]}'], "hidden"),
        (["--space", '{"lr": [0.1]}', "-p", "lr=0.2"], "lr is both searched"),
        (["-p", "nope=1"], "unknown param 'nope'"),
        (["--metric", " "], "--metric: give the name"),
        (["--seed", "4294967296"], "--seed 4294967296: give a whole number from 0 to"),
        (["--seed", "-1"], "--seed -1"),
        (["--metric", "val/f1"], "--metric val/f1: the loop does not report it at an epoch's"),
        (["--metric", "train/loss"], "it reports train/epoch_loss, val/loss, val/acc"),
        (["--nproc-per-node", "0"], "nproc"),
        (["--space", "[]"], "--space: give a JSON object of ranges and choices"),
        (["--space", "null"], "got NoneType"),
        (["--space", "/nonexistent.json"], "not a readable file (No such file or directory)"),
        (["--space", '{"lr": {"low": NaN, "high": 1}}'], "lr: low must be finite"),
        (["--space", '{"optimizer": ["adamw", "bogus"]}'], "choose one of adamw, adam, sgd"),
        (["--space", '{"hidden": {"low": 32, "high": 64, "step": 0.5}}'], "is an integer"),
        (["--space", '{"batch_size": [0, 64]}'], "batch_size must be at least 1"),
        (["--direction", "MAXIMIZE"], "--direction 'MAXIMIZE'"),
        (["--metric", "epoch"], "--metric epoch: the loop does not report it"),
        (["--timeout", "nan"], "--timeout nan"),
        (["--study", "-leading"], "study name '-leading'"),
        (["--study", "émoji"], "study name 'émoji'"),
    ],
)
def test_bad_input_is_one_line_and_records_nothing(
    sqlite_workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    data = digits(sqlite_workspace)
    code, out, err = hone_cli(capsys, "tune", "builtin:mlp", "--data", data, *args)
    assert code == 2, out + err
    assert message in err and "Traceback" not in err
    assert records.list_studies(get_tracker(sqlite_workspace).db) == []


def test_parallel_trials_never_share_a_gpu(
    sqlite_workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a machine with GPUs (faked here: the check is the same everywhere) each worker
    process gets GPUs of its own, and more trials' processes than GPUs are refused."""
    import torch

    from hone.tune.search import gpu_slices

    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_slices(2, 2) == ["0,1", "2,3"]
    assert gpu_slices(4, 1) == ["0", "1", "2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7,5,3,1")
    assert gpu_slices(2, 2) == ["7,5", "3,1"]
    code, _, err = hone_cli(
        capsys, "tune", "builtin:mlp", "--data", "digits@latest", "--parallel", "3",
        "--nproc-per-node", "2",
    )  # fmt: skip
    assert code == 2 and "--parallel 3 x --nproc-per-node 2: this machine has 4 GPU(s)" in err
    assert records.list_studies(get_tracker(sqlite_workspace).db) == []


def test_a_grid_study_runs_its_whole_grid_in_parallel(
    sqlite_workspace: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna's grid sampler stops a study whose grid is done, which Optuna refuses outside
    its own loop: the study still ends complete, every point once."""
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    data = digits(sqlite_workspace)
    space = '{"lr": [0.01, 0.003], "hidden": {"low": 32, "high": 64, "step": 32}}'
    code, out, err = hone_cli(
        capsys, "tune", "builtin:mlp", "--data", data, "--sampler", "grid", "--space", space,
        "--parallel", "2", "-p", "epochs=1", "--study", "grid", "--json",
    )  # fmt: skip
    assert code == 0, err
    outcome = json.loads(out)
    assert outcome["state"] == "complete" and outcome["budget"] == 4
    points = {(t.params["lr"], t.params["hidden"]) for t in _trials(sqlite_workspace, "grid")}
    assert points == {(0.01, 32), (0.01, 64), (0.003, 32), (0.003, 64)}
    assert "Traceback" not in err


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
    trials = _trials(sqlite_workspace, "gridcut")
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
    (trial,) = _trials(sqlite_workspace, "late")
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

    def training() -> list[Any]:
        try:
            trials = _trials(ws, "onedied")
        except Exception:
            return []
        return [t for t in trials if t.state.name == "RUNNING" and RUN_ATTR in t.system_attrs]

    _wait(lambda: len(training()) == 2, 60, "two trials training")
    db = get_tracker(ws).db
    victim_worker = training()[0].system_attrs["hone.worker"]
    (victim,) = [w for w in records.study_workers(db, "onedied") if w.worker == victim_worker]
    for pid in [*_descendants(victim.pid)[::-1], victim.pid]:
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
    monkeypatch.setattr("hone.tune.study.time.monotonic", _fast_clock())
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


def _fast_clock() -> Any:
    """time.monotonic for code that waits 30 s for something: each call a minute later."""
    ticks = iter(range(0, 10**9, 60))
    return lambda: float(next(ticks))


def test_a_study_name_taken_by_another_search_names_resume_or_a_new_name(
    sqlite_workspace: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    data = digits(sqlite_workspace)
    base = ["tune", "builtin:mlp", "--data", data, "--trials", "1", "-p", "epochs=1"]
    assert hone_cli(capsys, *base, "--study", "same")[0] == 0
    code, _, err = hone_cli(capsys, *base, "--study", "same", "--space", '{"lr": [0.1, 0.2]}')
    assert code == 2 and "exists with another space" in err and "--resume" in err
    code, _, err = hone_cli(capsys, "tune", "builtin:cnn", "--data", data, "--study", "same")
    assert code == 2 and "exists with another recipe" in err
    code, _, err = hone_cli(capsys, *base, "--study", "same")
    assert code == 2 and "continue it with --resume, or choose a new --study name" in err
    code, _, err = hone_cli(capsys, "tune", "show", "nosuch")
    assert code == 3 and "no study named 'nosuch'" in err
    code, _, err = hone_cli(capsys, *base, "--study", "typo", "--resume")
    assert code == 3 and "no study named 'typo' to resume" in err
    assert len(_trials(sqlite_workspace, "same")) == 1


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _descendants(pid: int) -> list[int]:
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
        try:
            trials = _trials(ws, "cut")
        except Exception:
            return 0
        return sum(
            t.state == optuna.trial.TrialState.RUNNING
            and (not training or RUN_ATTR in t.system_attrs)
            for t in trials
        )

    _wait(lambda: running(training=True) == 2, 60, "two trials training")
    # The workers first: killed after their parent, they would hear of its death and stop
    # in good order.
    if killed == "ctrl-c":  # the study stops in good order
        slow.send_signal(signal.SIGINT)
        assert slow.wait(timeout=60) == 130
        study_run = hone.get_run(records.get_study(db, "cut").run_id, workspace=ws)
        assert study_run.status is hone.RunStatus.KILLED
    else:
        victims = (_descendants(slow.pid)[::-1] if killed == "everything" else []) + [slow.pid]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        slow.communicate()
    if killed == "everything":
        before = _trials(ws, "cut")
        assert sum(t.state == optuna.trial.TrialState.RUNNING for t in before) == 2
    else:  # the workers stop on their own, failing their trials as interrupted
        _wait(lambda: running() == 0, 60, "the workers to stop")
        before = _trials(ws, "cut")
        assert sum(bool(t.system_attrs.get("hone.interrupted")) for t in before) == 2
        assert records.get_study(db, "cut").claimed == 0  # their budget is back already
    done = subprocess.run(
        [*command, "--resume"], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["opened"] == "resumed" and outcome["state"] == "complete"
    after = _trials(ws, "cut")
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


@pytest.mark.postgres
def test_two_hone_tune_processes_share_a_study_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    from hone.store.setup import init_workspace

    ws, _ = init_workspace(tmp_path / "shared", store_uri=postgres_url)
    data = digits(ws)
    command = [
        sys.executable, "-m", "hone.cli.main", "tune", "builtin:mlp", "--data", data,
        "--trials", "8", "--pruner", "none", "-p", "epochs=1", "--study", "pg-shared",
        "--json",
    ]  # fmt: skip
    env = {**os.environ, "HONE_HOME": str(ws.home)}
    procs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    opened = sorted(json.loads(out)["opened"] for out, _ in outs)
    assert opened == ["created", "joined"]
    trials = _trials(ws, "pg-shared")
    assert sorted(t.number for t in trials) == list(range(8))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    run_ids = {t.system_attrs[RUN_ATTR] for t in trials}
    assert len(run_ids) == 8
    hosts = {t.system_attrs["hone.worker"] for t in trials}
    assert len(hosts) == 2  # both processes ran trials
