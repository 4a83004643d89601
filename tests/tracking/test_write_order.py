"""The newest write wins, by the time carried in each record, whatever order journals are
replayed in (issue 6, fault 2): status, tags, metric steps and latest metrics agree."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import update

import hone
from hone.config import Workspace
from hone.errors import StoreUnavailableError
from hone.store.database import Database
from hone.store.schema import runs
from hone.tracking.deaths import mark_killed
from hone.tracking.sink import StoreSink
from hone.tracking.tracker import get_tracker


def test_one_step_logged_twice_in_one_flush_keeps_the_second_everywhere(
    workspace: Workspace,
) -> None:
    with hone.start_run(workspace=workspace) as run:
        run.log_metric("m", 7.0, step=0)
        run.log_metric("m", 6.0, step=0)
    got = hone.get_run(run.id, workspace=workspace)
    history = hone.get_metric_history(run.id, "m", workspace=workspace)
    assert got.metrics["m"].value == 6.0
    assert [(p.step, p.value) for p in history] == [(0, 6.0)]
    assert [r.id for r in hone.search_runs(filter="metrics.m = 6", workspace=workspace)] == [run.id]
    assert hone.search_runs(filter="metrics.m = 7", workspace=workspace) == []


def test_a_step_rewritten_in_a_later_flush_updates_latest_too(workspace: Workspace) -> None:
    with hone.start_run(workspace=workspace) as run:
        run.log_metric("m", 1.0, step=3)
        run.fetch()
        run.log_metric("m", 2.0, step=3)
    assert hone.get_run(run.id, workspace=workspace).metrics["m"].value == 2.0
    assert [p.value for p in hone.get_metric_history(run.id, "m", workspace=workspace)] == [2.0]


def _ended_offline(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, keep: Path
) -> hone.ActiveRun:
    """A run that ends while the store is down: its journal stays; a copy goes to ``keep``
    (another machine's journal that will be synced late)."""
    real = StoreSink.apply

    def down(self: StoreSink, batch: object, segment: str | None = None) -> None:
        raise StoreUnavailableError("down for the test")

    run = hone.start_run("order", params={"seed": 1}, tags={"stage": "old"}, workspace=workspace)
    run.log_metric("loss", 1.0, step=5)
    monkeypatch.setattr(StoreSink, "apply", down)
    run.end()
    monkeypatch.setattr(StoreSink, "apply", real)
    (segment,) = workspace.journal_dir.glob("*.jnl")
    shutil.copy(segment, keep / segment.name)
    return run


def test_a_late_replay_of_an_old_journal_cannot_undo_newer_writes(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keep = tmp_path / "late"
    keep.mkdir()
    run = _ended_offline(workspace, monkeypatch, keep)
    hone.sync(workspace=workspace)
    assert hone.get_run(run.id, workspace=workspace).status is hone.RunStatus.FINISHED
    time.sleep(0.01)
    resumed = hone.start_run(run_id=run.id, workspace=workspace)
    resumed.set_tag("stage", "new")
    resumed.log_metric("loss", 2.0, step=5)
    resumed.fetch()
    # The old journal turns up late (another machine's `hone sync`, say).
    for old in keep.iterdir():
        shutil.copy(old, workspace.journal_dir / old.name)
    report = hone.sync(workspace=workspace)
    assert report.segments == 1 and report.killed_runs == []
    got = hone.get_run(run.id, workspace=workspace)
    assert got.status is hone.RunStatus.RUNNING and got.end_time is None
    assert got.tags["stage"] == "new"
    assert got.metrics["loss"].value == 2.0
    assert [p.value for p in hone.get_metric_history(run.id, "loss", workspace=workspace)] == [2.0]
    resumed.end()
    assert hone.get_run(run.id, workspace=workspace).status is hone.RunStatus.FINISHED


def test_a_resume_is_ordered_after_what_the_store_holds_whatever_the_clock(
    workspace: Workspace,
) -> None:
    with hone.start_run(workspace=workspace) as run:
        pass
    # The run ended on a machine whose clock ran an hour ahead of this one.
    ahead = time.time() + 3600
    db = Database(workspace.store_uri)
    with db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == run.id).values(status_time=ahead))
    db.dispose()
    resumed = hone.start_run(run_id=run.id, workspace=workspace)
    resumed.fetch()
    assert hone.get_run(run.id, workspace=workspace).status is hone.RunStatus.RUNNING
    resumed.end("failed")
    assert hone.get_run(run.id, workspace=workspace).status is hone.RunStatus.FAILED


def test_a_dead_process_cannot_mark_a_resumed_run_killed(workspace: Workspace) -> None:
    sink = get_tracker(workspace).sink
    with hone.start_run(workspace=workspace) as run:
        pass
    resumed = hone.start_run(run_id=run.id, workspace=workspace)
    resumed.fetch()
    # A journal of a process that died before the resume, replayed now.
    assert not mark_killed(sink.db, run.id, time.time() - 60)
    assert hone.get_run(run.id, workspace=workspace).status is hone.RunStatus.RUNNING
    resumed.end()


def test_tags_take_the_newest_value_in_any_apply_order(workspace: Workspace) -> None:
    from hone.tracking.batch import Batch

    sink = get_tracker(workspace).sink
    with hone.start_run(workspace=workspace) as run:
        pass
    newer = Batch(run.id, tags={"t": ("new", 200.0)})
    older = Batch(run.id, tags={"t": ("old", 100.0)})
    sink.apply(newer)
    sink.apply(older)
    assert hone.get_run(run.id, workspace=workspace).tags["t"] == "new"
    sink.apply(Batch(run.id, tags={"t": ("newest", 300.0)}))
    assert hone.get_run(run.id, workspace=workspace).tags["t"] == "newest"
