"""``hone tune`` end to end: trials trained by hone's loop as child runs, in one process
and in parallel ones; pruning on the metric each epoch reports; the best trial's best
checkpoint as the study's result; bad input as one line; two ``hone tune`` processes on one
study on PostgreSQL. Interruptions and ``--resume``: test_tune_interruptions.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import hone
from hone.config import Workspace
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.tracker import get_tracker
from hone.tune import studies as records
from hone.tune.study import RUN_ATTR
from tests.train.helpers import digits
from tests.tune.helpers import (
    hone_cli,
    trials_of,
)

pytestmark = pytest.mark.slow


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
    trials = trials_of(home, "mlp")
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
    trials = trials_of(sqlite_workspace, "asha")
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
    trials = trials_of(sqlite_workspace, "ddp")
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
    for t in trials_of(sqlite_workspace, "dbr"):
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
    trials = trials_of(sqlite_workspace, "raises")
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
    trials = trials_of(sqlite_workspace, "nometric")
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

    from hone.tune.plan import gpu_slices

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
    points = {(t.params["lr"], t.params["hidden"]) for t in trials_of(sqlite_workspace, "grid")}
    assert points == {(0.01, 32), (0.01, 64), (0.003, 32), (0.003, 64)}
    assert "Traceback" not in err


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
    assert len(trials_of(sqlite_workspace, "same")) == 1


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
    trials = trials_of(ws, "pg-shared")
    assert sorted(t.number for t in trials) == list(range(8))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    run_ids = {t.system_attrs[RUN_ATTR] for t in trials}
    assert len(run_ids) == 8
    hosts = {t.system_attrs["hone.worker"] for t in trials}
    assert len(hosts) == 2  # both processes ran trials
