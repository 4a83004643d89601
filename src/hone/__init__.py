"""hone: a deep-learning model's whole life, and back.

The public Python API. Everything not listed in ``__all__`` is private.
"""

from __future__ import annotations

from hone import data
from hone.api import (
    end_run,
    get_metric_history,
    get_run,
    init,
    list_experiments,
    log_artifact,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    search_runs,
    set_tag,
    set_tags,
    sync,
)
from hone.config import Workspace
from hone.tracking.active import active_run
from hone.tracking.entities import Artifact, Experiment, Metric, Run, RunStatus
from hone.tracking.replay import SyncReport
from hone.tracking.run import ActiveRun
from hone.tracking.start import start_run

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Artifact",
    "Experiment",
    "Metric",
    "Run",
    "RunStatus",
    "SyncReport",
    "Workspace",
    "__version__",
    "active_run",
    "data",
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
    "start_run",
    "sync",
]
