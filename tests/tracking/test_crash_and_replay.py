"""Nothing the journal received is lost: kill -9, torn tails, unreachable stores, many writers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlalchemy import func, select

import hone
from hone.config import Workspace
from hone.store.database import Database
from hone.store.schema import metric_series, metrics
from hone.tracking.records import decode_frames, encode_metric
from hone.tracking.tracker import close_retired_segments
from tests.tracking.helpers import journal_points, kill_mid_run, spawn

LOGGER = """
import sys, hone
run = hone.start_run("crash", params={"n": 1})
print(run.id, flush=True)
for i in range(10_000_000):
    run.log_metric("loss", 1.0 / (i + 1), step=i)
    run.log_metric("acc", i % 100 / 100, step=i)
    if i == 20_000:
        print("going", flush=True)
"""


def _count(ws: Workspace, run_id: str) -> int:
    db = Database(ws.store_uri)
    try:
        with db.read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(metrics)
                    .join(metric_series, metric_series.c.id == metrics.c.series_id)
                    .where(metric_series.c.run_id == run_id)
                ).scalar_one()
            )
    finally:
        db.dispose()


@pytest.mark.slow
def test_kill_9_mid_logging_loses_nothing(workspace: Workspace) -> None:
    run_id = kill_mid_run(LOGGER, workspace.home, settle=0.3)
    journaled = journal_points(workspace.journal_dir)
    assert len(journaled) > 40_000
    report = hone.sync(workspace=workspace)
    assert report.killed_runs == [run_id]
    assert _count(workspace, run_id) == len(journaled)
    got = hone.get_run(run_id, workspace=workspace)
    assert got.status is hone.RunStatus.KILLED and got.end_time is not None
    assert got.params == {"n": "1"}
    assert list(workspace.journal_dir.glob("*.jnl")) == []  # replayed and cleared
    assert hone.sync(workspace=workspace).records == 0  # idempotent


def test_a_torn_tail_is_skipped_and_the_rest_kept(workspace: Workspace) -> None:
    run = hone.start_run(workspace=workspace)
    for step in range(100):
        run.log_metric("x", float(step), step=step)
    segment = run._writer.path
    # Simulate a crash: the process dies mid-record, before its end is journaled.
    run._writer.write(encode_metric(b"x", 1.0, 100, 0.0)[:-3])
    run._tracker.flusher.unregister(run)
    run._writer.close()
    from hone.tracking.active import forget

    forget(run)
    report = hone.sync(workspace=workspace)
    assert report.torn_bytes > 0
    assert report.killed_runs == [run.id]
    history = hone.get_metric_history(run.id, "x", workspace=workspace)
    assert [p.step for p in history] == list(range(100))
    assert not segment.exists()


def test_unreachable_store_keeps_the_run_going(tmp_path: Path, workspace: Workspace) -> None:
    down = Workspace(
        home=workspace.home,
        store_uri="postgresql://hone@127.0.0.1:1/nowhere",
        blob_uri=workspace.blob_uri,
    )
    with hone.start_run("offline", params={"p": 1}, workspace=down) as run:
        for step in range(1000):
            run.log_metric("loss", math.exp(-step / 100), step=step)
    # The run ended although the store never answered; its journal waits on disk.
    (segment,) = workspace.journal_dir.glob("*.jnl")
    journaled = len(list(decode_frames(segment.read_bytes())))
    assert journaled >= 1000 + 3  # points + start, params, end (+ a git diff, if dirty)
    report = hone.sync(workspace=workspace)
    assert report.records == journaled and report.killed_runs == []
    got = hone.get_run(run.id, workspace=workspace)
    assert got.status is hone.RunStatus.FINISHED and got.params == {"p": "1"}
    assert len(hone.get_metric_history(run.id, "loss", workspace=workspace)) == 1000


WRITER = """
import sys, hone
run = hone.start_run(run_id=sys.argv[1]) if len(sys.argv) > 1 else hone.start_run("many")
for i in range(5000):
    run.log_metric(f"rank{RANK}", float(i), step=i)
run.end()
print(run.id)
"""


@pytest.mark.slow
def test_processes_log_to_different_runs_at_once(workspace: Workspace) -> None:
    procs = [spawn(WRITER.replace("RANK", str(rank)), workspace.home) for rank in range(4)]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        ids.append(out.strip())
    assert len(set(ids)) == 4
    for run_id in ids:
        assert _count(workspace, run_id) == 5000


@pytest.mark.slow
def test_processes_log_to_the_same_run_at_once(workspace: Workspace) -> None:
    with hone.start_run("shared", workspace=workspace) as owner:
        owner.log_metric("owner", 1.0)
        owner.fetch()  # make sure the run row exists before others attach
        env = {"HONE_STORE_URI": workspace.store_uri}
        code = WRITER.replace("sys.argv[1]", f"'{owner.id}'").replace(
            'if len(sys.argv) > 1 else hone.start_run("many")', ""
        )
        procs = [spawn(code.replace("RANK", str(rank)), workspace.home, **env) for rank in range(3)]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    got = hone.get_run(owner.id, workspace=workspace)
    assert got.status is hone.RunStatus.FINISHED
    assert _count(workspace, owner.id) == 3 * 5000 + 1
    assert {k for k in got.metrics} == {"owner", "rank0", "rank1", "rank2"}


def test_continuing_a_run_after_its_process_died(workspace: Workspace) -> None:
    run_id = kill_mid_run(LOGGER, workspace.home)
    with hone.start_run(run_id=run_id, workspace=workspace) as resumed:
        last = hone.get_run(run_id, workspace=workspace).metrics["loss"].step
        resumed.log_metric("loss", 0.0)  # continues after the last journaled step
    got = hone.get_run(run_id, workspace=workspace)
    assert got.status is hone.RunStatus.FINISHED
    assert got.metrics["loss"].step == last + 1 and got.metrics["loss"].value == 0.0


def test_a_failed_live_flush_is_recovered_from_the_journal(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hone.errors import StoreUnavailableError
    from hone.tracking.sink import StoreSink

    run = hone.start_run("flaky", params={"p": 1}, workspace=workspace)
    for step in range(100):
        run.log_metric("x", float(step), step=step)
    real_apply = StoreSink.apply

    def down(self: StoreSink, batch: object, segment: str | None = None) -> None:
        raise StoreUnavailableError("store went away")

    monkeypatch.setattr(StoreSink, "apply", down)
    with run.lock, pytest.raises(StoreUnavailableError):
        run.flush()  # the first 100 points and the start leave memory unsaved
    monkeypatch.setattr(StoreSink, "apply", real_apply)
    for step in range(100, 150):
        run.log_metric("x", float(step), step=step)
    run.end()
    got = hone.get_run(run.id, workspace=workspace)
    assert got.status is hone.RunStatus.FINISHED and got.params == {"p": "1"}
    history = hone.get_metric_history(run.id, "x", workspace=workspace)
    assert [p.step for p in history] == list(range(150))
    close_retired_segments()  # normally done by the flusher thread, in the background
    assert not list(workspace.journal_dir.glob("*.jnl"))


def test_continuing_a_dead_run_by_a_prefix_replays_its_journal_first(
    workspace: Workspace,
) -> None:
    """An id prefix (or capitals) must find the dead process's journal too: otherwise the
    run continues at a stale step and its points overwrite the journal's."""
    run_id = kill_mid_run(LOGGER, workspace.home)
    with hone.start_run(run_id=run_id[:8].upper(), workspace=workspace) as resumed:
        assert resumed.id == run_id
        last = hone.get_run(run_id, workspace=workspace).metrics["loss"].step
        resumed.log_metric("loss", -1.0)
    history = hone.get_metric_history(run_id, "loss", workspace=workspace)
    assert [p.step for p in history] == list(range(last + 2))
    assert history[-1].value == -1.0 and all(p.value > 0 for p in history[:-1])
    assert hone.get_run(run_id, workspace=workspace).status is hone.RunStatus.FINISHED


OLD_TIMES = """
import hone
run = hone.start_run("old")
print(run.id, flush=True)
for i in range(10_000_000):
    run.log_metric("loss", 1.0, step=i, timestamp=1.6e9 + i)  # re-logging 2020's data
    if i == 1000:
        print("going", flush=True)
"""


def test_a_dead_run_whose_points_carry_old_timestamps_is_marked_killed(
    workspace: Workspace,
) -> None:
    run_id = kill_mid_run(OLD_TIMES, workspace.home)
    report = hone.sync(workspace=workspace)
    assert report.killed_runs == [run_id]
    got = hone.get_run(run_id, workspace=workspace)
    assert got.status is hone.RunStatus.KILLED and got.end_time is not None
    assert got.end_time >= got.start_time
