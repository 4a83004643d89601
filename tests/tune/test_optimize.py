"""Studies of a Python function (``hone.tune.optimize``), on both store backends: trials
are child runs of the study's run; failures are recorded and bounded; processes share a
study without running a trial twice or more trials than asked; an interrupted study
resumes with its running trial failed and its budget given back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import optuna
import pytest

import hone
from hone.config import Workspace
from hone.errors import ConflictError, NotFoundError, ValidationError
from hone.store.schema import tune_workers
from hone.tracking.tracker import get_tracker
from hone.tune import optimize
from hone.tune import studies as records
from hone.tune.driver import MAX_CONSECUTIVE_FAILURES
from hone.tune.storage import StoreJournal, study_storage
from hone.tune.study import INTERRUPTED_ATTR, RUN_ATTR, WORKER_ATTR


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    return -((x - 2) ** 2)


def _trials(ws: Workspace, name: str) -> list[optuna.trial.FrozenTrial]:
    db = get_tracker(ws).db
    return optuna.load_study(study_name=name, storage=study_storage(db, name)).get_trials()


def test_each_trial_is_a_child_run_with_its_params_and_value(workspace: Workspace) -> None:
    out = optimize(quadratic, n_trials=12, study="quad", workspace=workspace, seed=3)
    assert out.state == "complete" and out.trials["complete"] == 12 and out.budget == 12
    study_run = hone.get_run(out.run_id, workspace=workspace)
    assert study_run.status is hone.RunStatus.FINISHED
    assert (
        study_run.tags["hone.kind"] == "study" and study_run.tags["hone.study_state"] == "complete"
    )
    children = hone.search_runs(workspace=workspace, filter="tags.`hone.kind` = 'trial'")
    assert len(children) == 12
    trials = {t.number: t for t in _trials(workspace, "quad")}
    for run in children:
        assert run.parent_run_id == out.run_id and run.status is hone.RunStatus.FINISHED
        trial = trials[int(run.tags["hone.trial"])]
        assert trial.system_attrs[RUN_ATTR] == run.id
        assert float(run.params["x"]) == pytest.approx(trial.params["x"])
        assert run.metrics["value"].value == pytest.approx(trial.value)
    best = max(trials.values(), key=lambda t: t.value or -1e9)
    assert out.best is not None and out.best["trial"] == best.number
    assert out.best["value"] == pytest.approx(best.value)
    # The optimization history: the best value after each trial, on the study's run.
    history = hone.get_metric_history(out.run_id, "best/value", workspace=workspace)
    assert [m.value for m in history] == sorted(m.value for m in history)
    assert history[-1].value == pytest.approx(best.value)


def test_a_failing_trial_is_recorded_and_the_study_goes_on(workspace: Workspace) -> None:
    def sometimes(trial: optuna.Trial) -> float:
        x = trial.suggest_int("x", 0, 100)
        if trial.number % 3 == 1:
            raise RuntimeError(f"boom at {trial.number}")
        return float(x)

    out = optimize(sometimes, n_trials=9, study="flaky", workspace=workspace, sampler="random")
    assert out.state == "complete"
    assert out.trials["failed"] == 3 and out.trials["complete"] == 6
    failed = [t for t in _trials(workspace, "flaky") if t.state == optuna.trial.TrialState.FAIL]
    assert {t.system_attrs["hone.error"] for t in failed} == {
        f"RuntimeError: boom at {n}" for n in (1, 4, 7)
    }
    run = hone.get_run(failed[0].system_attrs[RUN_ATTR], workspace=workspace)
    assert run.status is hone.RunStatus.FAILED and "boom at 1" in run.tags["hone.error"]


def test_a_study_whose_trials_all_fail_stops_and_says_why(workspace: Workspace) -> None:
    def broken(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        raise ValueError("the objective is broken")

    out = optimize(broken, n_trials=50, study="broken", workspace=workspace)
    assert out.state == "stopped"
    assert out.trials["failed"] == MAX_CONSECUTIVE_FAILURES
    assert out.error is not None and "last 5 trials failed" in out.error
    assert "ValueError: the objective is broken" in out.error
    assert hone.get_run(out.run_id, workspace=workspace).status is hone.RunStatus.FAILED


def test_a_non_number_is_a_failed_trial(workspace: Workspace) -> None:
    out = optimize(lambda t: "high", n_trials=1, study="text", workspace=workspace)  # type: ignore[arg-type,return-value]
    assert out.trials["failed"] == 1
    trial = _trials(workspace, "text")[0]
    assert "returned high, not a finite number" in trial.system_attrs["hone.error"]
    run = hone.get_run(trial.system_attrs[RUN_ATTR], workspace=workspace)
    assert run.status is hone.RunStatus.FAILED


@pytest.mark.parametrize("value", [float("nan"), 10**400, float("-inf")])
def test_a_value_that_is_no_finite_number_fails_its_trial_and_run(
    sqlite_workspace: Workspace, value: Any
) -> None:
    out = optimize(lambda t: value, n_trials=1, study="odd", workspace=sqlite_workspace)
    assert out.trials["failed"] == 1
    trial = _trials(sqlite_workspace, "odd")[0]
    assert "not a finite number" in trial.system_attrs["hone.error"]
    run = hone.get_run(trial.system_attrs[RUN_ATTR], workspace=sqlite_workspace)
    assert run.status is hone.RunStatus.FAILED


def test_ctrl_c_while_a_trial_is_claimed_fails_it_as_interrupted(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal waits until the trial exists, then the trial is told interrupted and its
    claim given back: nothing is left running, nothing claimed for nothing."""
    import signal

    real = records.claim_trial
    calls = []

    def claim_then_signal(db: Any, name: str) -> bool:
        taken = real(db, name)
        calls.append(taken)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return taken

    monkeypatch.setattr("hone.tune.driver.studies.claim_trial", claim_then_signal)
    with pytest.raises(KeyboardInterrupt):
        optimize(quadratic, n_trials=10, study="sig", workspace=sqlite_workspace)
    trials = _trials(sqlite_workspace, "sig")
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2 + [
        optuna.trial.TrialState.FAIL
    ]
    assert trials[2].system_attrs[INTERRUPTED_ATTR]
    db = get_tracker(sqlite_workspace).db
    assert records.get_study(db, "sig").claimed == 2
    study_run = hone.get_run(records.get_study(db, "sig").run_id, workspace=sqlite_workspace)
    assert study_run.status is hone.RunStatus.KILLED


def test_a_trial_failed_meanwhile_by_another_process_is_left_as_it_is(
    sqlite_workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process judged this one gone (--resume elsewhere) and failed its trial: the
    owner's result is not told over it, and no traceback."""
    db = get_tracker(sqlite_workspace).db

    def judged_gone(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            other = study_storage(db, "judged")
            other.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        return x

    out = optimize(judged_gone, n_trials=3, study="judged", workspace=sqlite_workspace)
    assert out.state == "complete"
    states = [t.state for t in _trials(sqlite_workspace, "judged")]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    assert "was ended by another process meanwhile" in caplog.text


def test_a_pruned_trial_is_recorded_with_its_step(workspace: Workspace) -> None:
    def pruned(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        for step in range(1, 4):
            trial.report(x, step)
        if trial.number % 2:
            raise optuna.TrialPruned("stopped early")
        return x

    out = optimize(pruned, n_trials=4, study="pruned", workspace=workspace, sampler="random")
    assert out.trials == {"complete": 2, "pruned": 2, "failed": 0, "interrupted": 0, "running": 0}
    for t in _trials(workspace, "pruned"):
        if t.state == optuna.trial.TrialState.PRUNED:
            assert t.system_attrs["hone.pruned_at"] == {"step": 3, "epoch": 0}
            run = hone.get_run(t.system_attrs[RUN_ATTR], workspace=workspace)
            assert run.tags["hone.stopped"] == "stopped early"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trials": 0}, "--trials 0"),
        ({"n_trials": True}, "--trials True"),
        ({"n_trials": 1, "direction": "up"}, "direction 'up': choose one of maximize, minimize"),
        ({"n_trials": 1, "sampler": "bayes"}, "sampler 'bayes'"),
        ({"n_trials": 1, "pruner": "x"}, "pruner 'x'"),
        ({"n_trials": 1, "timeout": -1}, "--timeout -1"),
        ({"n_trials": 1, "study": "no spaces"}, "study name 'no spaces'"),
        ({"n_trials": 1, "study": "../up"}, "study name '../up'"),
        ({"n_trials": 1, "sampler": "grid"}, "grid needs a declarative search space"),
        ({"n_trials": 1, "seed": 2**32}, "--seed 4294967296"),
        ({"n_trials": 1, "study": "new", "resume": True}, "no study named 'new' to resume"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_recorded(
    sqlite_workspace: Workspace, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises((ValidationError, NotFoundError), match=message):
        optimize(quadratic, workspace=sqlite_workspace, **kwargs)
    assert records.list_studies(get_tracker(sqlite_workspace).db) == []


def test_a_name_taken_by_another_search_is_refused_naming_resume(workspace: Workspace) -> None:
    optimize(quadratic, n_trials=2, study="taken", workspace=workspace)

    def other(trial: optuna.Trial) -> float:
        return trial.suggest_float("y", 0, 1)

    with pytest.raises(ConflictError, match=r"exists with another recipe, space .*--resume"):
        optimize(other, n_trials=2, study="taken", workspace=workspace)
    with pytest.raises(ConflictError, match="exists with another direction"):
        optimize(quadratic, n_trials=2, study="taken", direction="minimize", workspace=workspace)
    # The same search without --resume: told to resume or choose a new name.
    with pytest.raises(ConflictError, match="continue it with --resume, or choose a new"):
        optimize(quadratic, n_trials=2, study="taken", workspace=workspace)
    assert len(_trials(workspace, "taken")) == 2


def test_resume_fails_the_interrupted_trial_and_gives_its_budget_back(
    workspace: Workspace,
) -> None:
    optimize(quadratic, n_trials=3, study="cut", workspace=workspace)
    db = get_tracker(workspace).db
    # What kill -9 leaves: a claimed trial, running, owned by a process that is gone.
    records.set_budget(db, "cut", 5)
    assert records.claim_trial(db, "cut")
    study = optuna.load_study(study_name="cut", storage=study_storage(db, "cut"))
    left = study.ask()
    study._storage.set_trial_system_attr(left._trial_id, WORKER_ATTR, "gone-worker")
    records.heartbeat(db, "cut", "gone-worker", time.time())
    with db.write() as conn:  # its process: this machine, a pid that does not exist
        conn.execute(tune_workers.update().values(pid=2**22 + 12345, seen_at=time.time() - 3600))
    out = optimize(quadratic, n_trials=5, study="cut", resume=True, workspace=workspace)
    assert out.how == "resumed" and out.state == "complete"
    assert out.trials == {"complete": 5, "pruned": 0, "failed": 0, "interrupted": 1, "running": 0}
    interrupted = [t for t in _trials(workspace, "cut") if t.system_attrs.get(INTERRUPTED_ATTR)]
    assert [t.number for t in interrupted] == [left.number]
    assert records.get_study(db, "cut").claimed == 5


def test_resume_counts_the_claims_again_when_a_process_died_between_claim_and_ask(
    workspace: Workspace,
) -> None:
    optimize(quadratic, n_trials=2, study="leak", workspace=workspace)
    db = get_tracker(workspace).db
    records.set_budget(db, "leak", 4)
    assert records.claim_trial(db, "leak")  # claimed, never asked: its process died
    out = optimize(quadratic, n_trials=4, study="leak", resume=True, workspace=workspace)
    assert out.trials["complete"] == 4


def test_the_journal_numbers_appends_without_gaps_under_threads(workspace: Workspace) -> None:
    import threading

    journal = StoreJournal(get_tracker(workspace).db, "numbers")

    def append(who: int) -> None:
        for i in range(20):
            journal.append_logs([{"who": who, "i": i}, {"who": who, "i": i, "second": True}])

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logs = list(journal.read_logs(0))
    assert len(logs) == 160
    # A batch stays together, and each writer's batches stay in its order.
    for first, second in zip(logs[::2], logs[1::2], strict=True):
        assert second == {**first, "second": True}
    for who in range(4):
        assert [x["i"] for x in logs[::2] if x["who"] == who] == list(range(20))
    assert list(journal.read_logs(150)) == logs[150:]


def test_two_journals_of_one_study_replay_the_same_order(workspace: Workspace) -> None:
    """A process reads its own append back without the store only when nothing came
    before it; whatever interleaving, both sides see one order."""
    db = get_tracker(workspace).db
    a, b = StoreJournal(db, "order"), StoreJournal(db, "order")
    a.append_logs([{"x": 0}])
    b.append_logs([{"x": 1}])  # b had not read a's: it reads from the store
    assert list(a.read_logs(0)) == [{"x": 0}]
    assert list(a.read_logs(1)) == [{"x": 1}]
    assert list(b.read_logs(0)) == [{"x": 0}, {"x": 1}]
    b.append_logs([{"x": 2, "pairs": [[1, 2]]}])
    a.append_logs([{"x": 3}])
    assert list(b.read_logs(2)) == [{"x": 2, "pairs": [[1, 2]]}]  # its own, as JSON reads
    assert list(b.read_logs(3)) == [{"x": 3}]
    assert list(a.read_logs(2)) == [{"x": 2, "pairs": [[1, 2]]}, {"x": 3}]
    # Optuna over two storages: trials numbered once, the same in both.
    first = optuna.create_study(study_name="two", storage=study_storage(db, "two"))
    second = optuna.load_study(study_name="two", storage=study_storage(db, "two"))
    for study in (first, second, first, first, second):
        trial = study.ask()
        study.tell(trial, float(trial.number))
    assert [t.number for t in first.get_trials()] == [0, 1, 2, 3, 4]
    assert [t.value for t in second.get_trials()] == [0.0, 1.0, 2.0, 3.0, 4.0]


SHARER = textwrap.dedent(
    """
    import sys, time, optuna
    from hone.tune import optimize

    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        time.sleep(0.02)
        return -((x - 2) ** 2)

    objective.__qualname__ = "quadratic"  # the same search in every process
    out = optimize(objective, n_trials=int(sys.argv[1]), study="shared", workspace=sys.argv[2])
    print(out.how, out.trials["complete"])
    """
)


def test_processes_share_a_study_without_running_a_trial_twice(workspace: Workspace) -> None:
    """Four processes, one study of 30 trials: exactly 30 trials, each number once, each
    with one run; every process joined while another was working."""

    # The study exists first (made by the same code), with a process present: the others
    # join it.
    first = subprocess.run(
        [sys.executable, "-c", SHARER, "1", str(workspace.home)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0 and first.stdout.split() == ["created", "1"], first.stderr
    db = get_tracker(workspace).db
    records.set_budget(db, "shared", 30)
    records.heartbeat(db, "shared", "holder", time.time())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SHARER, "30", str(workspace.home)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert out.split()[0] == "joined"
    trials = _trials(workspace, "shared")
    assert len(trials) == 30
    assert sorted(t.number for t in trials) == list(range(30))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    runs = hone.search_runs(
        workspace=workspace, filter="tags.`hone.study` = 'shared' and tags.`hone.kind` = 'trial'"
    )
    assert len(runs) == 30
    assert sorted(int(r.tags["hone.trial"]) for r in runs) == list(range(30))
    assert records.get_study(db, "shared").claimed == 30


def test_a_study_stopped_by_failures_runs_again_when_resumed(workspace: Workspace) -> None:
    """The failures that stopped it were before the resume: it starts afresh."""
    broken = {"on": True}

    def flaky(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if broken["on"]:
            raise OSError("the disk is full")
        return x

    flaky.__qualname__ = "flaky"
    first = optimize(flaky, n_trials=10, study="fixed", workspace=workspace)
    assert first.state == "stopped" and first.trials["failed"] == MAX_CONSECUTIVE_FAILURES
    broken["on"] = False
    again = optimize(flaky, n_trials=10, study="fixed", resume=True, workspace=workspace)
    assert again.state == "complete"
    assert again.trials["complete"] == 10 - MAX_CONSECUTIVE_FAILURES


def test_resume_takes_over_a_study_run_whose_owner_died_elsewhere(
    sqlite_workspace: Workspace,
) -> None:
    """Killed on a machine whose journals this one cannot replay (here: deleted): the
    study's run would stay running forever; --resume marks it killed and owns it."""
    import shutil
    import signal

    ws = sqlite_workspace
    code = textwrap.dedent(
        """
        import os, signal, sys, time, optuna
        from hone.tune import optimize

        def slow(trial):
            x = trial.suggest_float("x", 0, 1)
            if trial.number == 1 and not os.environ.get("FAST"):
                print("under way", flush=True)
                time.sleep(60)
            return x

        out = optimize(slow, n_trials=3, study="lost", workspace=sys.argv[1],
                       resume=bool(os.environ.get("FAST")))
        print(out.how, out.state, out.trials["complete"], out.trials["interrupted"])
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(ws.home)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "under way"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    shutil.rmtree(ws.journal_dir)  # what another machine's journals are to this one
    ws.journal_dir.mkdir()
    db = get_tracker(ws).db
    run_id = records.get_study(db, "lost").run_id
    assert hone.get_run(run_id, workspace=ws).status is hone.RunStatus.RUNNING
    done = subprocess.run(
        [sys.executable, "-c", code, str(ws.home)],
        capture_output=True,
        text=True,
        env={**os.environ, "FAST": "1"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["resumed", "complete", "3", "1"]
    assert hone.get_run(run_id, workspace=ws).status is hone.RunStatus.FINISHED


def test_a_process_seen_lately_on_another_machine_is_working_on_the_study(
    workspace: Workspace,
) -> None:
    """Another machine's process is judged by when the store last saw it, by the store's
    clock; this machine's by its pid."""
    optimize(quadratic, n_trials=1, study="remote", workspace=workspace)
    db = get_tracker(workspace).db
    records.heartbeat(db, "remote", "elsewhere", time.time())
    with db.write() as conn:
        conn.execute(tune_workers.update().values(host="another-machine/abc/1", pid=1))
    # Seen a moment ago: the study has a worker, so this process joins it.
    joined = optimize(quadratic, n_trials=2, study="remote", workspace=workspace)
    assert joined.how == "joined" and joined.trials["complete"] == 2
    records.heartbeat(db, "remote", "elsewhere", time.time())
    with db.write() as conn:  # not seen for longer than gone_after(): gone
        conn.execute(
            tune_workers.update().values(host="another-machine/abc/1", seen_at=time.time() - 600)
        )
    with pytest.raises(ConflictError, match="no process is working on it"):
        optimize(quadratic, n_trials=3, study="remote", workspace=workspace)


def test_claims_are_never_given_back_below_zero(workspace: Workspace) -> None:
    optimize(quadratic, n_trials=1, study="floor", workspace=workspace)
    db = get_tracker(workspace).db
    assert not records.set_claimed(db, "floor", 0, expected=5)  # someone claimed meanwhile
    assert records.get_study(db, "floor").claimed == 1
    assert records.set_claimed(db, "floor", 0, expected=1)
    records.give_back(db, "floor")
    assert records.get_study(db, "floor").claimed == 0
