"""What tracking returns to readers: plain, immutable values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

__all__ = ["Artifact", "Experiment", "Input", "Metric", "Run", "RunStatus"]


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    created_at: float


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp: float


@dataclass(frozen=True)
class Artifact:
    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class Input:
    """A dataset version a run read."""

    version_id: str
    dataset: str
    split: str | None

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.version_id[:12]}"


@dataclass(frozen=True)
class Run:
    id: str
    experiment_id: str
    experiment: str
    name: str
    status: RunStatus
    start_time: float
    end_time: float | None
    parent_run_id: str | None
    git_commit: str | None
    git_dirty: bool | None
    host: str | None
    user: str | None
    source: str | None
    environment_json: str = field(default="", repr=False)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    artifacts: tuple[Artifact, ...] = ()
    inputs: tuple[Input, ...] = ()

    @cached_property
    def environment(self) -> dict[str, Any]:
        """Python, platform and package versions (decoded on first use)."""
        try:
            decoded = json.loads(self.environment_json) if self.environment_json else {}
        except (ValueError, RecursionError):  # written by something other than hone
            return {}
        return decoded if isinstance(decoded, dict) else {}

    @property
    def duration(self) -> float | None:
        return None if self.end_time is None else self.end_time - self.start_time

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (NaN and inf become strings, as JSON has neither)."""
        return {
            "id": self.id,
            "experiment_id": self.experiment_id,
            "experiment": self.experiment,
            "name": self.name,
            "status": self.status.value,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "parent_run_id": self.parent_run_id,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "host": self.host,
            "user": self.user,
            "source": self.source,
            "environment": self.environment,
            "params": self.params,
            "tags": self.tags,
            "metrics": {
                k: {"value": json_number(m.value), "step": m.step, "timestamp": m.timestamp}
                for k, m in self.metrics.items()
            },
            "inputs": [
                {"version_id": i.version_id, "dataset": i.dataset, "split": i.split}
                for i in self.inputs
            ],
            "artifacts": [
                {"path": a.path, "digest": a.digest, "size": a.size} for a in self.artifacts
            ],
        }


def json_number(value: float) -> float | str:
    """JSON has no NaN or infinity: those travel as the strings "NaN", "Infinity"."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value
