"""Starting a run, or continuing one that another (maybe dead) process wrote."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from hone.config import Workspace
from hone.errors import HoneError, NotFoundError, ValidationError
from hone.ids import new_id
from hone.tracking.active import active_run, forget_all_in_child, push
from hone.tracking.entities import RunStatus
from hone.tracking.environment import capture_environment
from hone.tracking.queries import get_run, resolve_run_id
from hone.tracking.run import ActiveRun
from hone.tracking.tracker import (
    Tracker,
    close_retired_segments,
    get_tracker,
    reset_trackers_in_child,
)
from hone.tracking.validation import (
    check_name,
    check_param_conflicts,
    check_run_id,
    checked_values,
)

__all__ = ["start_run", "wait_for_run", "workspace_of"]

log = logging.getLogger("hone.tracking")

_crashed = False
#: How long continuing a run waits for it to reach the store.
ATTACH_WAIT_S = 10.0


def workspace_of(workspace: Any) -> Workspace:
    """A ``Workspace`` from what the public API accepts: one, a path, or None (discover)."""
    if isinstance(workspace, Workspace):
        return workspace
    if workspace is not None and not isinstance(workspace, (str, os.PathLike)):
        raise ValidationError(
            f"workspace must be a path or a hone.Workspace, got {type(workspace).__name__}"
        )
    return Workspace.discover(workspace)


def start_run(
    experiment: str = "default",
    name: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: str | ActiveRun | None = None,
    run_id: str | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> ActiveRun:
    """Start a run (or continue ``run_id``) and make it the active run of this process.

    A run started while another is active becomes its child unless ``parent`` says
    otherwise. Continuing a run that a dead process left replays that process's journal
    first; continuing one another live process is writing to attaches to it.
    """
    # Everything is checked before the run's first record: bad input leaves no run behind.
    checked_params = checked_values(params or {}, "param")
    checked_tags = checked_values(tags or {}, "tag")
    experiment = check_name(experiment, "experiment")
    if name is not None:
        check_name(name, "run")
    if run_id is not None and not isinstance(run_id, str):
        raise ValidationError(f"run_id must be a run id (a string), got {run_id!r}")
    parent_id = parent.id if isinstance(parent, ActiveRun) else parent
    if parent_id is not None:
        check_run_id(parent_id, "parent")
    tracker = get_tracker(workspace_of(workspace))
    _install_hooks()
    if run_id is not None:
        run = _continue(tracker, run_id, checked_params)
    else:
        if parent_id is None:
            current = active_run()
            parent_id = current.id if current else None
        run = _create(tracker, experiment, name, parent_id)
    if checked_params:
        # A new run's params reach the store with its start record; nobody else has it yet.
        run._record_params(checked_params, claim=run_id is not None)
    if checked_tags:
        run._record_tags(checked_tags)
    tracker.flusher.register(run)
    push(run)
    return run


def _create(
    tracker: Tracker, experiment: str, name: str | None, parent_id: str | None
) -> ActiveRun:
    run_id = new_id()
    run_name = name if name is not None else f"run-{run_id[:8]}"
    env = capture_environment()
    run = ActiveRun(tracker, run_id, experiment, run_name, owner=True)
    run._event(
        "start",
        {
            "run_id": run_id,
            "experiment": experiment,
            "name": run_name,
            "parent_run_id": parent_id,
            "git_commit": env.git.commit if env.git else None,
            "git_dirty": env.git.dirty if env.git else None,
            "host": env.host,
            "user": env.user,
            "source": env.source,
            "environment": env.info_json,
        },
    )
    if env.git is not None and env.git.dirty and env.git.diff:
        try:
            run.log_text(env.git.diff.decode(errors="replace"), "git.diff")
        except HoneError as exc:
            log.warning("hone: could not store the git diff of run %s: %s", run_id, exc)
    return run


def _continue(tracker: Tracker, run_id: str, params: dict[str, str]) -> ActiveRun:
    full = wait_for_run(tracker, run_id)
    tracker.sync(run_id=full)
    existing = get_run(tracker.db, full)
    check_param_conflicts(existing.id, existing.params, params)
    owner = existing.status != RunStatus.RUNNING
    run = ActiveRun(
        tracker,
        existing.id,
        existing.experiment,
        existing.name,
        owner=owner,
        clock=tracker.sink.clock(existing.id),
    )
    run._params.update(existing.params)
    for key, metric in existing.metrics.items():
        run._next_step[key] = metric.step + 1
    run._event("resume" if owner else "attach", {"run_id": existing.id})
    return run


def wait_for_run(tracker: Tracker, run_id: str) -> str:
    """The full id of the run to continue. A run another process has just started may not
    be in the store yet (its first records reach it within a flush interval): wait a while
    for it, replaying this machine's dead journals once, in case they hold it."""
    deadline = time.monotonic() + ATTACH_WAIT_S
    synced = False
    while True:
        try:
            return resolve_run_id(tracker.db, run_id)
        except NotFoundError:
            if not synced:
                tracker.sync()
                synced = True
                continue
            if len(run_id) != 32 or time.monotonic() >= deadline:  # (only a full id is waited for)
                raise NotFoundError(
                    f"no run {run_id!r} in {tracker.db.display_url()} (waited "
                    f"{ATTACH_WAIT_S:g} s for a run another process is starting)"
                ) from None
            time.sleep(0.1)


_hooks_installed = False


def _install_hooks() -> None:
    """End runs left open at exit: failed after an uncaught exception, else finished."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        global _crashed
        _crashed = True
        previous(exc_type, exc, tb)

    sys.excepthook = hook
    atexit.register(_end_open_runs)
    os.register_at_fork(after_in_child=_forget_in_forked_child)


def _forget_in_forked_child() -> None:
    """A forked child inherits the parent's runs, journal maps and connections, none of
    which it may use: its runs refuse to log (start or continue one in the child), and it
    opens its own journals and connections."""
    forget_all_in_child()
    reset_trackers_in_child()


def _end_open_runs() -> None:
    while (run := active_run()) is not None:
        run.end(RunStatus.FAILED if _crashed else RunStatus.FINISHED)
    close_retired_segments()
