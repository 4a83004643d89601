"""Training: recipes run by hone's standard loop, from one process to many machines.

``hone.train.train("builtin:cnn", "digits@latest", params={"epochs": 5})`` trains in this
process; ``nproc_per_node=2`` (and ``nnodes``...) starts the workers through torchrun.
A loop of your own uses the helpers: ``init_distributed``, ``hone.data.loader`` (sharded
by rank), ``save_checkpoint`` / ``load_latest``, ``is_main`` and ``sum_across``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hone.config import Workspace
from hone.data.dataset import DatasetVersion
from hone.train.checkpoint import CheckpointWriter, Restored, load_latest, save_checkpoint
from hone.train.distributed import (
    Context,
    all_gather_objects,
    init_distributed,
    is_main,
    sum_across,
)
from hone.train.launch import Outcome, Topology, check_names, launch, prepare
from hone.train.params import LOOP_PARAMS, Params
from hone.train.recipes import DataSpec, Recipe

__all__ = [
    "LOOP_PARAMS",
    "CheckpointWriter",
    "Context",
    "DataSpec",
    "Outcome",
    "Params",
    "Recipe",
    "Restored",
    "Topology",
    "all_gather_objects",
    "init_distributed",
    "is_main",
    "load_latest",
    "save_checkpoint",
    "sum_across",
    "train",
]


def train(
    recipe: str,
    data: str | DatasetVersion,
    *,
    params: Mapping[str, Any] | None = None,
    nproc_per_node: int = 1,
    max_restarts: int = 0,
    experiment: str = "train",
    name: str | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> Outcome:
    """Train ``recipe`` on dataset version ``data`` as one tracked run; returns how it ended
    (a failed job is an outcome, not an exception: bad input is)."""
    from hone.tracking.start import workspace_of

    topology = Topology(nproc_per_node=nproc_per_node, max_restarts=max_restarts)
    topology.check()
    check_names(experiment, name)
    ws = workspace_of(workspace)
    job = prepare(
        recipe,
        data,
        {} if params is None else params,
        world_size=topology.world_size,
        workspace=ws,
        where="params",
    )
    return launch(job, topology, experiment=experiment, name=name)
