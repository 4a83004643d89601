"""The flusher thread: never holds up other runs' starts and ends (issue 6, fault 3), and
bounds the memory a run's queue may take (issue 12, point 7)."""

from __future__ import annotations

import threading
import time

import pytest

import hone
from hone.config import Workspace
from hone.tracking import run as run_module
from hone.tracking.applier import apply_range as real_apply_range
from hone.tracking.sink import StoreSink
from hone.tracking.tracker import get_tracker


def test_starting_and_ending_runs_never_wait_behind_another_runs_flush(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = get_tracker(workspace)
    tracker.flusher.interval = 0.02
    real = StoreSink.apply
    slow = hone.start_run("slow", workspace=workspace)
    entered, release = threading.Event(), threading.Event()

    def stuck_for_slow(self: StoreSink, batch: object, segment: str | None = None) -> object:
        if getattr(batch, "run_id", None) == slow.id and not release.is_set():
            entered.set()
            release.wait(30)  # a store that takes its time answering this run's flush
        return real(self, batch, segment=segment)  # type: ignore[arg-type]

    monkeypatch.setattr(StoreSink, "apply", stuck_for_slow)
    try:
        slow.log_metric("x", 1.0)
        assert entered.wait(10), "the flusher never flushed the slow run"
        started = time.monotonic()
        for i in range(5):
            with hone.start_run("quick", parent=slow, workspace=workspace) as quick:
                quick.log_metric("y", float(i))
        assert time.monotonic() - started < 5  # not the 30 s the slow flush could take
        assert hone.get_run(quick.id, workspace=workspace).metrics["y"].value == 4.0
    finally:
        release.set()
    slow.end()
    assert hone.get_run(slow.id, workspace=workspace).metrics["x"].value == 1.0


def test_a_run_queues_at_most_its_bound_in_memory_and_loses_nothing(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "QUEUE_LIMIT", 64 << 10)
    read_back: list[int] = []

    def counting(*args: object, **kwargs: object) -> object:
        result = real_apply_range(*args, **kwargs)  # type: ignore[arg-type]
        read_back.append(result.records)
        return result

    monkeypatch.setattr("hone.tracking.run.apply_range", counting)
    tracker = get_tracker(workspace)
    tracker.flusher.interval = 3600  # only the bound wakes it
    frame = 8 + 1 + 24 + len(b"loss")
    most = 0
    with hone.start_run("bounded", workspace=workspace) as run:
        for step in range(30_000):
            run.log_metric("loss", step / 7, step=step)
            if step % 97 == 0:
                most = max(most, len(run._keys["loss"][1]) // 24)  # packed points
    assert sum(read_back) > 0  # past the bound, points went through the journal only
    assert most * frame <= (64 << 10) + 100 * frame  # the bound, give or take a few points
    history = hone.get_metric_history(run.id, "loss", workspace=workspace)
    assert [p.step for p in history] == list(range(30_000))
    assert all(p.value == p.step / 7 for p in history)


def test_a_long_lived_process_forgets_the_series_of_ended_runs(workspace: Workspace) -> None:
    sink = get_tracker(workspace).sink
    for _ in range(50):
        with hone.start_run(workspace=workspace) as run:
            run.log_metrics({f"k{i}": 1.0 for i in range(10)})
    assert sink._series_ids == {}
