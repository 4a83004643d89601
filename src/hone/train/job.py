"""What every process of a training job is told: the job itself (JSON in
``HONE_TRAIN_JOB``), and the epoch hook a caller may give it."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hone.errors import UserError

__all__ = ["EpochHook", "Hook", "Job", "load_hook"]


@dataclass(frozen=True)
class Hook:
    """Called by rank 0 at the end of every epoch, by name so that any process can load it
    (the tuning layer's pruning, which this layer does not import): ``target`` is
    ``module:function``, and ``function(config)`` returns ``hook(epoch, step, metrics)``,
    which returns why training should stop early, or None to go on. An exception it raises
    fails the job (every rank), with the exception's message."""

    target: str
    config: Mapping[str, Any]


EpochHook = Callable[[int, int, dict[str, float]], "str | None"]


@dataclass
class Job:
    """What every process of a training job is told (JSON in ``HONE_TRAIN_JOB``)."""

    recipe: str
    data: str  # name@full-version-id: every rank reads exactly this version
    params: dict[str, Any]  # resolved and checked by the launcher
    workspace: str
    run_id: str = ""  # set on the launcher that owns the run; others learn it from rank 0's group
    threads: int = 0  # intra-op threads per rank; 0: cores / local processes
    hook: str = ""  # Hook.target: called at every epoch's end ("" for none)
    hook_config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


def load_hook(target: str, config: Mapping[str, Any]) -> EpochHook:
    module_name, _, attr = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"the job's epoch hook {target!r} cannot be loaded: {exc}") from None
    hook: EpochHook = factory(config)
    return hook
