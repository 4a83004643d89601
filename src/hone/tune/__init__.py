"""Hyperparameter tuning on Optuna: a study is a run, its trials are child runs.

``tune("builtin:cnn", "digits@latest", trials=20)`` (``hone tune``) searches a recipe's
``search_space`` with hone's standard loop, pruning on the metrics it reports each epoch;
``optimize(objective, n_trials=...)`` runs a Python function of Optuna's trial the same
way. Any number of processes, on any number of machines sharing the store, may work on one
study.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hone.config import Workspace
from hone.tune.results import StudyOutcome
from hone.tune.search import optimize

__all__ = ["StudyOutcome", "optimize", "quiet_optuna", "tune"]


def tune(
    recipe: str,
    data: str,
    *,
    trials: int | None = None,
    parallel: int = 1,
    sampler: str = "tpe",
    pruner: str = "median",
    metric: str | None = None,
    direction: str | None = None,
    timeout: float | None = None,
    study: str | None = None,
    resume: bool = False,
    params: Mapping[str, Any] | None = None,
    space: Mapping[str, Any] | None = None,
    nproc_per_node: int = 1,
    seed: int | None = None,
    experiment: str = "tune",
    baseline: bool = True,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> StudyOutcome:
    """Search ``recipe``'s hyperparameters on dataset version ``data``: what ``hone tune``
    does (see its help for each argument)."""
    from hone.tracking.start import workspace_of
    from hone.tune.plan import plan_recipe_study
    from hone.tune.search import run_plan

    plan = plan_recipe_study(
        recipe,
        data,
        workspace=workspace_of(workspace),
        trials=trials,
        parallel=parallel,
        sampler=sampler,
        pruner=pruner,
        metric=metric,
        direction=direction,
        timeout=timeout,
        study=study,
        resume=resume,
        params=params,
        space=space,
        nproc_per_node=nproc_per_node,
        seed=seed,
        experiment=experiment,
        baseline=baseline,
    )
    return run_plan(plan)


def quiet_optuna() -> None:
    """hone reports trials itself: Optuna's own lines (one per trial) are turned off."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
