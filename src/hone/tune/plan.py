"""A recipe study, planned: every check that needs no trial (options, recipe, data,
search space, params, GPUs), before anything is recorded."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hone.config import Workspace
from hone.errors import ValidationError
from hone.tracking.validation import check_name
from hone.tune.choices import DIRECTIONS, PRUNERS, SAMPLERS, check_choice
from hone.tune.objectives import RecipeTrials
from hone.tune.space import Space, parse_space
from hone.tune.study import check_study_name

__all__ = [
    "MAX_SEED",
    "MAX_TRIALS",
    "Plan",
    "check_counts",
    "check_seed",
    "default_direction",
    "gpu_slices",
    "new_study_name",
    "plan_recipe_study",
]


MAX_TRIALS = 100_000


MAX_PARALLEL = 256


#: Optuna's samplers seed NumPy's generator, which takes 32 bits.
MAX_SEED = 2**32 - 1


_MAX_WORDS = ("acc", "f1", "auc", "precision", "recall", "r2")


@dataclass
class Plan:
    """A recipe study, checked before anything is recorded."""

    name: str
    config: dict[str, Any]
    space: Space
    objective: RecipeTrials
    workspace: Workspace
    budget: int | None
    parallel: int
    timeout: float | None
    resume: bool
    space_given: dict[str, Any] | None = None
    version_ref: str = ""
    notes: list[str] = field(default_factory=list)
    baseline: dict[str, Any] | None = None  # a new study's first trial


def default_direction(metric: str) -> str:
    return "maximize" if any(w in metric.lower() for w in _MAX_WORDS) else "minimize"


def check_counts(trials: int | None, parallel: int, timeout: float | None) -> None:
    if trials is not None and (
        isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS
    ):
        raise ValidationError(f"--trials {trials!r}: give a whole number from 1 to {MAX_TRIALS:,}")
    if (
        isinstance(parallel, bool)
        or not isinstance(parallel, int)
        or not 1 <= parallel <= MAX_PARALLEL
    ):
        raise ValidationError(
            f"--parallel {parallel!r}: give a whole number from 1 to {MAX_PARALLEL}"
        )
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValidationError(f"--timeout {timeout!r}: give a number of seconds above 0")


def check_seed(seed: int | None) -> None:
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        raise ValidationError(f"--seed {seed!r}: give a whole number from 0 to {MAX_SEED:,}")


def plan_recipe_study(
    recipe: str,
    data: str,
    *,
    workspace: Workspace,
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
    max_restarts: int = 0,
    seed: int | None = None,
    experiment: str = "tune",
    baseline: bool = True,
) -> Plan:
    """Every check that needs no trial: options, recipe, data, space, params. With
    ``baseline``, a new study's first trial tries the recipe's own values of the searched
    params (when they lie in the space): the result to beat."""
    from hone.train.launch import Topology, prepare
    from hone.train.params import declare, resolve
    from hone.train.recipes import load_recipe

    check_counts(trials, parallel, timeout)
    check_choice(sampler, SAMPLERS, "--sampler")
    check_choice(pruner, PRUNERS, "--pruner")
    check_name(experiment, "experiment")
    check_seed(seed)
    if metric is not None and (not isinstance(metric, str) or not metric.strip()):
        raise ValidationError("--metric: give the name of a metric the loop reports, e.g. val/acc")
    if direction is not None:
        check_choice(direction, DIRECTIONS, "--direction")
    Topology(nproc_per_node=nproc_per_node, max_restarts=max_restarts).check()
    gpu_slices(parallel, nproc_per_node)  # refused now if the GPUs cannot go round
    loaded = load_recipe(recipe)
    fixed = dict(params or {})
    job = prepare(recipe, data, fixed, world_size=nproc_per_node, workspace=workspace)
    metric = metric or ("val/acc" if job.spec.classes is not None else "val/loss")
    # What an epoch's end reports (a trial is judged there): known now, refused now.
    judged = [m for m in job.logged if m not in ("train/loss", "epoch", "lr")]
    if metric not in judged:
        raise ValidationError(
            f"--metric {metric}: the loop does not report it at an epoch's end for this "
            f"recipe and data; it reports {', '.join(judged)}"
        )
    direction = direction or default_direction(metric)
    if space is not None:
        parsed = parse_space(space, "--space")
    else:
        parsed = parse_space(getattr(loaded.obj, "search_space", None), f"recipe {loaded.ref}")
    declared = declare(loaded.params, loaded.ref)
    notes: list[str] = []
    if parsed.dims is not None:
        _check_dims(parsed, declared, fixed)
    first = None
    if baseline and sampler != "grid":
        first = parsed.baseline({**declared, **job.params})
        if first is not None:
            shown = ", ".join(f"{k}={v}" for k, v in first.items())
            notes.append(f"trial 0 tries the recipe's own values ({shown}): the result to beat")
    budget = trials
    if sampler == "grid":
        size = parsed.grid_size()
        if budget is None or budget > size:
            notes.append(f"the grid has {size} point(s): the study runs {size} trial(s)")
            budget = size
    name = check_study_name(study) if study is not None else new_study_name(loaded.ref)
    epochs = int(job.params.epochs)
    config: dict[str, Any] = {
        "kind": "recipe",
        "recipe": loaded.ref,
        "data": job.spec.ref,
        "space": parsed.fingerprint,
        "space_json": space,  # None: the recipe's own
        "metric": metric,
        "direction": direction,
        "sampler": sampler,
        "pruner": pruner,
        "seed": seed,
        "params": {k: job.params[k] for k in sorted(fixed)},
        "epochs": epochs,
        "experiment": experiment,
    }
    # What each trial's params are checked against (values as the loop takes them).
    resolve(declared, fixed, where="-p")
    objective = RecipeTrials(
        recipe=loaded.ref,
        data=job.spec.ref,
        fixed=dict(config["params"]),
        metric=metric,
        direction=direction,
        pruner=pruner,
        epochs=epochs,
        nproc_per_node=nproc_per_node,
        max_restarts=max_restarts,
        experiment=experiment,
    )
    return Plan(
        name=name,
        config=config,
        space=parsed,
        objective=objective,
        workspace=workspace,
        budget=budget,
        parallel=parallel,
        timeout=timeout,
        resume=resume,
        space_given=dict(space) if space is not None else None,
        version_ref=job.version.ref,
        notes=notes,
        baseline=first,
    )


def _check_dims(space: Space, declared: Mapping[str, Any], fixed: Mapping[str, Any]) -> None:
    from hone.train.params import resolve

    assert space.dims is not None
    for name, dim in space.dims.items():
        if name in fixed:
            raise ValidationError(
                f"{name} is both searched ({space.where}) and fixed (-p {name}=...): drop one"
            )
        if name not in declared:
            raise ValidationError(
                f"{space.where} searches {name!r}, which is not a param of the recipe; it "
                f"takes {', '.join(sorted(declared))}"
            )
        values = list(dim) if isinstance(dim, tuple) else [dim.low, dim.high]
        if not isinstance(dim, tuple) and dim.integer:
            values = [int(v) for v in values]
        for value in values:
            resolve(declared, {name: value}, where=f"{space.where}, {name}")


def gpu_slices(parallel: int, nproc: int) -> list[str] | None:
    """On a machine with GPUs: the devices each of ``parallel`` worker processes may use
    (``CUDA_VISIBLE_DEVICES`` for each), ``nproc`` apiece, none shared; None without GPUs."""
    import torch

    if not torch.cuda.is_available():
        return None
    count = torch.cuda.device_count()
    if parallel * nproc > count:
        raise ValidationError(
            f"--parallel {parallel} x --nproc-per-node {nproc}: this machine has {count} "
            f"GPU(s) and each trial's process takes one of its own; run at most {count} at "
            "once (or hide the GPUs with CUDA_VISIBLE_DEVICES= to tune on the CPU)"
        )
    given = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    visible = [d.strip() for d in given.split(",")] if given else [str(i) for i in range(count)]
    return [",".join(visible[i * nproc : (i + 1) * nproc]) for i in range(parallel)]


def new_study_name(recipe_ref: str) -> str:
    stem = recipe_ref.replace("builtin:", "").rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    stem = "".join(c if c.isalnum() or c in "_.-" else "-" for c in stem).strip("-.") or "study"
    return f"{stem[:60]}-{time.strftime('%Y%m%d-%H%M%S')}"
