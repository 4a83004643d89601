"""The public Python API's functions; ``hone/__init__.py`` re-exports them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from hone.config import Workspace
from hone.errors import UserError
from hone.store.setup import init_workspace
from hone.tracking import queries
from hone.tracking.active import active_run
from hone.tracking.entities import Experiment, Metric, Run, RunStatus
from hone.tracking.replay import SyncReport
from hone.tracking.run import ActiveRun
from hone.tracking.start import workspace_of
from hone.tracking.tracker import get_tracker

__all__ = [
    "end_run",
    "get_metric_history",
    "get_run",
    "init",
    "list_experiments",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_tag",
    "set_tags",
    "sync",
]

WorkspaceLike = Workspace | str | os.PathLike[str] | None


def _workspace(workspace: WorkspaceLike) -> Workspace:
    return workspace_of(workspace)


def _active() -> ActiveRun:
    run = active_run()
    if run is None:
        raise UserError("no active run: call hone.start_run() first (or use `with` on it)")
    return run


def init(
    home: str | os.PathLike[str] | None = None,
    *,
    store_uri: str | None = None,
    blob_uri: str | None = None,
) -> Workspace:
    """Create (or reuse) a workspace and bring its store's schema up to date."""
    workspace, _ = init_workspace(home, store_uri=store_uri, blob_uri=blob_uri)
    return workspace


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: float | None = None
) -> None:
    _active().log_metric(key, value, step, timestamp)


def log_metrics(
    values: Mapping[str, float], step: int | None = None, timestamp: float | None = None
) -> None:
    _active().log_metrics(values, step, timestamp)


def log_param(key: str, value: Any) -> None:
    _active().log_param(key, value)


def log_params(values: Mapping[str, Any]) -> None:
    _active().log_params(values)


def set_tag(key: str, value: Any) -> None:
    _active().set_tag(key, value)


def set_tags(values: Mapping[str, Any]) -> None:
    _active().set_tags(values)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> list[str]:
    return _active().log_artifact(path, name)


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    _active().end(status)


def get_run(run_id: str, *, workspace: WorkspaceLike = None) -> Run:
    """A run by id (or unique id prefix), with its params, tags and latest metrics."""
    return queries.get_run(get_tracker(_workspace(workspace)).db, run_id)


def get_metric_history(run_id: str, key: str, *, workspace: WorkspaceLike = None) -> list[Metric]:
    """Every point of one metric of one run, by step."""
    return queries.metric_history(get_tracker(_workspace(workspace)).db, run_id, key)


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | str | None = None,
    max_results: int = 1000,
    *,
    workspace: WorkspaceLike = None,
) -> list[Run]:
    """Runs matching a filter such as ``"metrics.acc > 0.9 and params.lr = '0.01'"``,
    ordered by ``order_by`` clauses (one string is one clause), at most ``max_results``
    (1 to 50,000)."""
    db = get_tracker(_workspace(workspace)).db
    return queries.search_runs(
        db, experiment=experiment, filter=filter, order_by=order_by, max_results=max_results
    )


def list_experiments(*, workspace: WorkspaceLike = None) -> list[Experiment]:
    return queries.list_experiments(get_tracker(_workspace(workspace)).db)


def sync(*, workspace: WorkspaceLike = None) -> SyncReport:
    """Replay every journal left by ended or dead processes into the store."""
    return get_tracker(_workspace(workspace)).sync()
