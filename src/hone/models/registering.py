"""Registering a checkpoint as a new immutable model version: the run's checkpoint (best,
latest or a step) or a study's best trial's; its lineage (run, checkpoint, dataset version
and fitted preprocessing, commit), metrics and signature; and its exports, each verified
against the eager model before anything is recorded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hone.data.api import get as get_dataset
from hone.data.dataset import DatasetVersion
from hone.errors import NotFoundError, UserError, ValidationError
from hone.models.exporting import Made, keep_blobs, make_exports, parse_formats
from hone.models.workspace import Opened, WorkspaceLike, opened
from hone.registry import (
    ModelRef,
    ModelVersion,
    check_model_name,
    get_version,
    insert_version,
)
from hone.tracking.checkpoints import Checkpoint, list_checkpoints
from hone.tracking.entities import Run
from hone.tracking.queries import get_run

__all__ = ["Registered", "register", "signature_of"]

MAX_DESCRIPTION = 5000


@dataclass(frozen=True)
class Registered:
    version: ModelVersion
    exports: list[Made] = field(default_factory=list)


def register(
    name: str,
    *,
    run: str | None = None,
    checkpoint: str | int = "best",
    study: str | None = None,
    formats: str | Iterable[str] = ("onnx",),
    description: str | None = None,
    workspace: WorkspaceLike = None,
) -> Registered:
    """A new version of model ``name`` from ``run``'s checkpoint (``best`` by the run's
    best_metric, ``latest``, or a step) or from ``study``'s best trial; ``formats`` are
    exported and verified first (any failure: nothing is registered)."""
    check_model_name(name)
    wanted = parse_formats(formats)
    if description is not None and (not isinstance(description, str) or "\x00" in description):
        raise ValidationError("description must be text (without NUL bytes)")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ValidationError(f"description is {len(description):,} characters; at most 5,000")
    ws = opened(workspace)
    if (run is None) == (study is None):
        raise ValidationError("give the run to register (--run RUN) or a study (--study NAME)")
    if study is not None and not isinstance(study, str):
        raise ValidationError(f"study must be a study's name, got {type(study).__name__}")
    source: dict[str, Any]
    if study is not None:
        found, chosen, source = _from_study(ws, study)
        if checkpoint != "best":
            raise ValidationError("--checkpoint goes with --run; a study gives its best trial's")
    else:
        assert run is not None
        found = get_run(ws.db, run)
        chosen = _checkpoint(ws, found, checkpoint)
        source = {"kind": "run", "checkpoint": str(checkpoint)}
    data, params = _trained_on(ws, found)
    signature = signature_of(data)
    _check_task(ws, name, signature)
    body: dict[str, Any] = {
        "recipe": found.params["recipe"],
        "recipe_source": recipe_source(found),
        "params": params,
        "data": {
            "ref": f"{data.name}@{data.id}",
            "dataset": data.name,
            "version": data.id,
            "train_split": params.get("train_split", "train"),
        },
        "preprocessing": list(data.manifest.transforms),
        "signature": signature,
        "metrics": dict(chosen.metrics),
        "checkpoint": {"step": chosen.step, "epoch": chosen.epoch, "state": chosen.state},
        "git": {"commit": found.git_commit, "dirty": found.git_dirty},
        "source": source,
        "description": description,
    }
    made = (
        make_exports(ws, name, found.id, chosen.step, chosen.weights, body, data, wanted)
        if wanted
        else []
    )
    version = insert_version(
        ws.db,
        name,
        run_id=found.id,
        step=chosen.step,
        weights=chosen.weights,
        dataset_version=data.id,
        body=body,
        exports=[m.record for m in made],
    )
    keep_blobs(ws, made)
    return Registered(version, made)


def _check_task(ws: Opened, name: str, signature: dict[str, Any]) -> None:
    """A model's versions are one kind of model: champion and challenger are compared."""
    try:
        latest = get_version(ws.db, ModelRef(name))
    except NotFoundError:
        return
    if latest.signature.get("task") != signature["task"]:
        raise UserError(
            f"{latest.ref} is a {latest.signature.get('task')} model; this run's is "
            f"{signature['task']}: register it under another name"
        )


def _from_study(ws: Opened, study: str) -> tuple[Run, Checkpoint, dict[str, Any]]:
    from hone.tune.studies import get_study  # Optuna only for a study

    record = get_study(ws.db, study)
    result = record.result or {}
    best = result.get("checkpoint")
    if not best:
        raise UserError(
            f"study {study!r} has no best checkpoint yet (its trials are still running, all "
            "failed, or saved none): see hone tune show " + study
        )
    found = get_run(ws.db, best["run_id"])
    step = int(best["step"])
    for saved in list_checkpoints(ws.db, found.id):
        if saved.step == step:
            source = {"kind": "study", "study": study, "trial": result.get("trial")}
            return found, saved, source
    raise NotFoundError(
        f"study {study!r}'s best checkpoint (run {found.id}, step {step}) is no longer "
        "recorded; register another of the trial's checkpoints with --run"
    )


def _checkpoint(ws: Opened, run: Run, which: str | int) -> Checkpoint:
    saved = list_checkpoints(ws.db, run.id)
    if not saved:
        raise NotFoundError(
            f"run {run.id} has no checkpoints: nothing to register (only a run that saved "
            "its model has one: hone train saves one each epoch)"
        )
    steps = ", ".join(str(c.step) for c in saved[-8:]) + (" …" if len(saved) > 8 else "")
    text = str(which)
    if (isinstance(which, int) and not isinstance(which, bool)) or (
        text.isascii() and text.isdigit()
    ):
        step = int(which)
        for c in saved:
            if c.step == step:
                return c
        raise NotFoundError(f"run {run.id} has no checkpoint at step {step}; its steps: {steps}")
    if which == "latest":
        return saved[-1]
    if which != "best":
        raise ValidationError(
            f"--checkpoint {which!r}: give best, latest or a step number (this run's: {steps})"
        )
    metric = run.params.get("best_metric", "val/loss")
    mode = run.params.get("best_mode", "auto")
    if mode not in ("min", "max"):
        from hone.train.loop import _MAX_WORDS

        mode = "max" if any(w in metric.lower() for w in _MAX_WORDS) else "min"
    scored = [c for c in saved if metric in c.metrics]
    if not scored:
        raise NotFoundError(
            f"run {run.id}'s checkpoints have no {metric} (it evaluated nothing): give "
            "--checkpoint latest or a step"
        )
    sign = -1.0 if mode == "max" else 1.0
    return min(scored, key=lambda c: (sign * c.metrics[metric], -c.step))


def _trained_on(ws: Opened, run: Run) -> tuple[DatasetVersion, dict[str, Any]]:
    """The dataset version the run trained on and its params, typed as the recipe declares
    them (a run of hone train records both)."""
    from hone.export.build import check_source
    from hone.train.params import declare, resolve
    from hone.train.recipes import load_recipe

    if "recipe" not in run.params or "data" not in run.params:
        raise UserError(
            f"run {run.id} was not trained by hone train (it has no recipe and data params): "
            "hone registers what it can rebuild"
        )
    data = get_dataset(run.params["data"], workspace=ws.workspace)
    recipe = load_recipe(run.params["recipe"])
    check_source(recipe, recipe_source(run), f"run {run.id}")
    declared = declare(recipe.params, recipe.ref)
    given = {k: v for k, v in run.params.items() if k in declared}
    params = dict(resolve(declared, given, f"run {run.id[:8]}'s params"))
    return data, params


def recipe_source(run: Run) -> dict[str, Any] | None:
    """The copy of its recipe file a run keeps (path and digest), if it has one."""
    for artifact in run.artifacts:
        if artifact.path.startswith("recipe/"):
            return {"path": artifact.path, "digest": artifact.digest}
    return None


def signature_of(data: DatasetVersion) -> dict[str, Any]:
    """Raw features in (the dataset's dtype and shape, any batch), the outputs, and the
    classes in the dataset's own values."""
    manifest = data.manifest
    classification = manifest.classes is not None
    outputs: Sequence[dict[str, Any]] = (
        [
            {
                "name": "probabilities",
                "dtype": "float32",
                "shape": [None, len(manifest.classes or ())],
            },
            {"name": "label", "dtype": "int64", "shape": [None]},
        ]
        if classification
        else [{"name": "prediction", "dtype": "float32", "shape": [None]}]
    )
    return {
        "inputs": [
            {
                "name": "input",
                "dtype": manifest.features.dtype,
                "shape": [None, *manifest.features.shape],
            }
        ],
        "outputs": list(outputs),
        "classes": list(manifest.classes) if manifest.classes is not None else None,
        "feature_names": list(manifest.feature_names),
        "task": "classification" if classification else "regression",
        "label": manifest.label.name if manifest.label else None,
    }
