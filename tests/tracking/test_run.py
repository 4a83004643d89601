"""Logging through an active run: what lands in the store, and what is refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import hone
from hone.config import Workspace
from hone.errors import ConflictError, UserError, ValidationError


def test_params_metrics_tags_reach_the_store(workspace: Workspace) -> None:
    with hone.start_run(
        "exp",
        name="first",
        params={"lr": 0.01, "opt": "adam"},
        tags={"team": "vision"},
        workspace=workspace,
    ) as run:
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"acc": 0.5, "f1": 0.25}, step=3)
        run.set_tag("stage", "dev")
    got = hone.get_run(run.id, workspace=workspace)
    assert got.status is hone.RunStatus.FINISHED
    assert got.experiment == "exp" and got.name == "first"
    assert got.params == {"lr": "0.01", "opt": "adam"}
    assert got.tags == {"team": "vision", "stage": "dev"}
    assert got.metrics["loss"].value == pytest.approx(0.2) and got.metrics["loss"].step == 4
    assert got.metrics["acc"].value == 0.5 and got.metrics["f1"].step == 3
    assert got.end_time is not None and got.end_time >= got.start_time
    history = hone.get_metric_history(run.id, "loss", workspace=workspace)
    assert [p.step for p in history] == [0, 1, 2, 3, 4]
    assert [p.value for p in history] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])


def test_steps_default_to_the_next_step_of_each_key(workspace: Workspace) -> None:
    with hone.start_run(workspace=workspace) as run:
        run.log_metric("a", 1.0)
        run.log_metric("a", 2.0)
        run.log_metric("b", 5.0, step=10)
        run.log_metric("b", 6.0)
    assert [p.step for p in hone.get_metric_history(run.id, "a", workspace=workspace)] == [0, 1]
    assert [p.step for p in hone.get_metric_history(run.id, "b", workspace=workspace)] == [10, 11]


def test_same_step_twice_keeps_the_last_value(workspace: Workspace) -> None:
    with hone.start_run(workspace=workspace) as run:
        run.log_metric("loss", 1.0, step=0)
        run.log_metric("loss", 0.5, step=0)
    history = hone.get_metric_history(run.id, "loss", workspace=workspace)
    assert [(p.step, p.value) for p in history] == [(0, 0.5)]


def test_non_finite_values_are_stored_faithfully(workspace: Workspace) -> None:
    with hone.start_run(workspace=workspace) as run:
        run.log_metric("nan", math.nan)
        run.log_metric("pinf", math.inf)
        run.log_metric("ninf", -math.inf)
    got = hone.get_run(run.id, workspace=workspace)
    assert math.isnan(got.metrics["nan"].value)
    assert got.metrics["pinf"].value == math.inf
    assert got.metrics["ninf"].value == -math.inf
    assert got.to_dict()["metrics"]["nan"]["value"] == "NaN"


def test_numpy_and_torch_scalars_are_accepted(workspace: Workspace) -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    with hone.start_run(workspace=workspace) as run:
        run.log_metric("np", np.float32(0.5), step=np.int64(2))
        run.log_metric("torch", torch.tensor(0.25))
    got = hone.get_run(run.id, workspace=workspace)
    assert got.metrics["np"].value == 0.5 and got.metrics["np"].step == 2
    assert got.metrics["torch"].value == 0.25


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "empty"),
        (" padded", "whitespace"),
        ("a" * 251, "limit is 250"),
        ("bad\nkey", "characters hone does not allow"),
        ("quote'key", "characters hone does not allow"),
        (42, "must be a string"),
    ],
)
def test_bad_metric_keys_are_rejected_clearly(
    workspace: Workspace, key: object, fragment: str
) -> None:
    with hone.start_run(workspace=workspace) as run:
        with pytest.raises(ValidationError, match=fragment):
            run.log_metric(key, 1.0)  # type: ignore[arg-type]
        run.log_metric("ok/key-1.a: b", 1.0)  # the allowed punctuation
    assert "ok/key-1.a: b" in hone.get_run(run.id, workspace=workspace).metrics


def test_bad_values_and_steps_are_rejected(workspace: Workspace) -> None:
    with hone.start_run(workspace=workspace) as run:
        with pytest.raises(ValidationError, match="not a number"):
            run.log_metric("x", "high")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="not an integer"):
            run.log_metric("x", 1.0, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="64 bits"):
            run.log_metric("x", 1.0, step=2**70)
        with pytest.raises(ValidationError, match="limit is 8,000"):
            run.log_param("big", "x" * 8001)


def test_params_are_fixed_once_logged(workspace: Workspace) -> None:
    with hone.start_run(params={"lr": 0.1}, workspace=workspace) as run:
        run.log_param("lr", 0.1)  # same value again is fine
        with pytest.raises(ConflictError, match=r"already '0\.1'"):
            run.log_param("lr", 0.2)
    assert hone.get_run(run.id, workspace=workspace).params == {"lr": "0.1"}


def test_status_reflects_how_the_block_ended(workspace: Workspace) -> None:
    with pytest.raises(RuntimeError), hone.start_run(workspace=workspace) as failed:
        raise RuntimeError("diverged")
    with pytest.raises(KeyboardInterrupt), hone.start_run(workspace=workspace) as killed:
        raise KeyboardInterrupt
    assert hone.get_run(failed.id, workspace=workspace).status is hone.RunStatus.FAILED
    assert hone.get_run(killed.id, workspace=workspace).status is hone.RunStatus.KILLED


def test_logging_after_end_is_an_error(workspace: Workspace) -> None:
    run = hone.start_run(workspace=workspace)
    run.end()
    with pytest.raises(ValidationError, match="has ended"):
        run.log_metric("x", 1.0)


def test_module_level_functions_use_the_active_run(workspace: Workspace) -> None:
    with pytest.raises(UserError, match="no active run"):
        hone.log_metric("x", 1.0)
    with hone.start_run(workspace=workspace) as outer:
        hone.log_metric("x", 1.0)
        hone.log_params({"a": 1})
        hone.set_tag("t", "v")
        with hone.start_run(workspace=workspace) as inner:
            assert hone.active_run() is inner
            hone.log_metric("y", 2.0)
        assert hone.active_run() is outer
    assert hone.active_run() is None
    got_outer = hone.get_run(outer.id, workspace=workspace)
    got_inner = hone.get_run(inner.id, workspace=workspace)
    assert "x" in got_outer.metrics and "y" not in got_outer.metrics
    assert got_outer.params == {"a": "1"} and got_outer.tags == {"t": "v"}
    assert got_inner.parent_run_id == outer.id


def test_artifacts_are_content_addressed(workspace: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("same")
    (folder / "sub" / "b.txt").write_text("same")
    with hone.start_run(workspace=workspace) as run:
        recorded = run.log_artifact(folder)
        with pytest.raises(ValidationError, match="no such file"):
            run.log_artifact(tmp_path / "missing.bin")
    assert recorded == ["out/a.txt", "out/sub/b.txt"]
    got = hone.get_run(run.id, workspace=workspace)
    digests = {a.digest for a in got.artifacts if a.path.startswith("out/")}
    assert len(digests) == 1  # identical bytes are stored once
    from hone.blobs import open_blob_store

    assert open_blob_store(workspace.blob_uri).get_bytes(digests.pop()) == b"same"


def test_a_run_records_where_it_came_from(workspace: Workspace) -> None:
    with hone.start_run(workspace=workspace) as run:
        pass
    got = hone.get_run(run.id, workspace=workspace)
    assert got.environment["python"]
    assert "sqlalchemy" in got.environment["packages"]
    assert got.host and got.user and got.source


def test_git_commit_and_dirty_diff_are_recorded(
    tmp_path: Path, sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from hone.tracking import environment

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "x"], check=True)
    (repo / "train.py").write_text("print(2)\n")
    monkeypatch.chdir(repo)
    monkeypatch.setattr(environment, "_source", lambda: "<interactive>")
    environment.capture_environment.cache_clear()
    try:
        with hone.start_run(workspace=sqlite_workspace) as run:
            pass
    finally:
        environment.capture_environment.cache_clear()
    got = hone.get_run(run.id, workspace=sqlite_workspace)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert got.git_commit == head and got.git_dirty is True
    diff = next(a for a in got.artifacts if a.path == "git.diff")
    from hone.blobs import open_blob_store

    assert b"+print(2)" in open_blob_store(sqlite_workspace.blob_uri).get_bytes(diff.digest)


def test_uninitialised_workspace_says_how_to_fix_it(tmp_path: Path) -> None:
    from hone.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match="hone init"):
        hone.start_run(workspace=tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()  # nothing created as a side effect


def test_an_ended_run_never_writes_into_the_next_runs_journal(workspace: Workspace) -> None:
    first = hone.start_run(workspace=workspace)
    first.end()
    first._tracker.flusher.close_retired()
    with hone.start_run(workspace=workspace) as second:
        second.log_metric("x", 1.0)
        with pytest.raises(ValidationError, match="has ended"):
            first.log_metric("x", 99.0)
        with pytest.raises(ValidationError, match="has ended"):
            first.set_tag("t", "v")
    assert hone.get_run(second.id, workspace=workspace).metrics["x"].value == 1.0
    assert "x" not in hone.get_run(first.id, workspace=workspace).metrics


def test_bad_params_at_start_leave_no_run_behind(workspace: Workspace) -> None:
    with pytest.raises(ValidationError, match="characters hone does not allow"):
        hone.start_run(params={"bad\tkey": 1}, workspace=workspace)
    with pytest.raises(ValidationError, match="run name"):
        hone.start_run(name="", workspace=workspace)
    assert hone.active_run() is None
    assert hone.search_runs(workspace=workspace) == []
    assert list(workspace.journal_dir.glob("*.jnl")) == []


def test_continuing_a_run_with_a_conflicting_param_is_refused(workspace: Workspace) -> None:
    with hone.start_run(params={"lr": 0.1}, workspace=workspace) as run:
        pass
    with pytest.raises(ConflictError, match=r"already '0\.1'"):
        hone.start_run(run_id=run.id, params={"lr": 0.2}, workspace=workspace)
    assert hone.get_run(run.id, workspace=workspace).status is hone.RunStatus.FINISHED


def test_threads_logging_to_one_run_lose_nothing(workspace: Workspace) -> None:
    import sys
    import threading

    from hone.tracking.records import MetricPoint, decode_frames

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    with hone.start_run(workspace=workspace) as run:

        def log(worker: int) -> None:
            for step in range(2000):
                run.log_metric(f"t{worker}", float(step), step=step)

        threads = [threading.Thread(target=log, args=(w,)) for w in range(4)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(previous)
        # The journal itself must hold every frame intact, not only the in-memory queue.
        journaled = [r for _, r in decode_frames(run._writer.path.read_bytes())]
        assert sum(isinstance(r, MetricPoint) for r in journaled) == 4 * 2000
    for worker in range(4):
        history = hone.get_metric_history(run.id, f"t{worker}", workspace=workspace)
        assert [p.step for p in history] == list(range(2000))
