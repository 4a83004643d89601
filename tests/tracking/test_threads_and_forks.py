"""Several threads on one run, and forked children (found by a hostile pass): no point is
lost or overwritten, a run ends once, and a child never writes into its parent's journal."""

from __future__ import annotations

import functools
import multiprocessing
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

import hone
from hone.config import Workspace
from hone.errors import ValidationError


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter allows: races show up at once."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _in_threads(count: int, target: Callable[[int], object]) -> None:
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_threads_logging_one_key_without_steps_get_distinct_steps(
    workspace: Workspace, busy_switching: None
) -> None:
    with hone.start_run(workspace=workspace) as run:

        def log(thread: int) -> None:
            for i in range(5000):
                run.log_metric("shared", float(thread * 5000 + i))

        _in_threads(4, log)
    history = hone.get_metric_history(run.id, "shared", workspace=workspace)
    assert [p.step for p in history] == list(range(20_000))
    assert sorted(p.value for p in history) == [float(v) for v in range(20_000)]


def test_threads_admitting_the_same_new_keys_lose_no_point(
    workspace: Workspace, busy_switching: None
) -> None:
    with hone.start_run(workspace=workspace) as run:

        def log(thread: int) -> None:
            for k in range(500):
                run.log_metric(f"k{k}", float(thread), step=thread)

        _in_threads(4, log)
    got = hone.get_run(run.id, workspace=workspace)
    assert len(got.metrics) == 500
    for k in (0, 250, 499):
        history = hone.get_metric_history(run.id, f"k{k}", workspace=workspace)
        assert [(p.step, p.value) for p in history] == [(t, float(t)) for t in range(4)]


def test_ending_a_run_from_several_threads_ends_it_once(workspace: Workspace) -> None:
    for _ in range(20):
        run = hone.start_run(workspace=workspace)
        run.log_metric("x", 1.0)
        barrier = threading.Barrier(3)
        errors: list[BaseException] = []
        _in_threads(3, functools.partial(_end_together, run, barrier, errors))
        assert errors == []
    # Segments went back to the process's spares once each: two new runs never share one.
    first = hone.start_run(workspace=workspace)
    second = hone.start_run(workspace=workspace)
    assert first._writer is not second._writer
    first.log_metric("a", 1.0)
    second.log_metric("b", 2.0)
    second.end()
    first.end()
    assert hone.get_run(first.id, workspace=workspace).metrics["a"].value == 1.0
    assert hone.get_run(second.id, workspace=workspace).metrics["b"].value == 2.0


def _end_together(
    run: hone.ActiveRun, barrier: threading.Barrier, errors: list[BaseException], _: int
) -> None:
    barrier.wait()
    try:
        run.end()
    except BaseException as exc:  # collected: the test's assertion names it
        errors.append(exc)


def _child_logs(run: hone.ActiveRun, home: str, queue: multiprocessing.Queue[str]) -> None:
    assert hone.active_run() is None  # the parent's runs are not the child's
    try:
        run.log_metric("from_child", 1.0)
        queue.put("logged")
    except ValidationError as exc:
        queue.put(f"refused: {exc}")
    with hone.start_run(run_id=run.id, workspace=home) as own:  # the way to do it
        own.log_metric("child_own", 2.0)
    queue.put("continued")


def test_a_forked_child_cannot_write_into_its_parents_journal(workspace: Workspace) -> None:
    context = multiprocessing.get_context("fork")
    with hone.start_run("forked", workspace=workspace) as run:
        run.log_metric("parent", 1.0)
        run.fetch()
        queue: multiprocessing.Queue[str] = context.Queue()
        child = context.Process(target=_child_logs, args=(run, str(workspace.home), queue))
        child.start()
        first, second = queue.get(timeout=60), queue.get(timeout=60)
        child.join(60)
        run.log_metric("parent", 2.0)
    assert child.exitcode == 0
    assert first.startswith("refused") and "forked child" in first and second == "continued"
    got = hone.get_run(run.id, workspace=workspace)
    assert "from_child" not in got.metrics
    assert got.metrics["child_own"].value == 2.0 and got.metrics["parent"].value == 2.0
    assert got.status is hone.RunStatus.FINISHED
