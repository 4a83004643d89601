"""Experiment tracking: runs, params, metrics, tags, artifacts — journaled, never lost."""

from __future__ import annotations

from hone.tracking.active import active_run
from hone.tracking.entities import Artifact, Experiment, Metric, Run, RunStatus
from hone.tracking.run import ActiveRun
from hone.tracking.start import start_run
from hone.tracking.tracker import Tracker, get_tracker

__all__ = [
    "ActiveRun",
    "Artifact",
    "Experiment",
    "Metric",
    "Run",
    "RunStatus",
    "Tracker",
    "active_run",
    "get_tracker",
    "start_run",
]
