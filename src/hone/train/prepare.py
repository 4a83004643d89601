"""Everything about a training job that can be checked before any process starts: the
recipe imports and has what it needs, the params resolve, the data exists and fits the
model (two real samples through it), the recipe's parts are what the loop takes, and the
settings make sense (said as warnings when they train but rarely as meant)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hone.config import Workspace
from hone.data.api import get as get_version
from hone.data.dataset import DatasetVersion
from hone.data.split_cache import cache_bytes
from hone.errors import ValidationError
from hone.store.database import database_for
from hone.train.loop import validation_split
from hone.train.params import Params, declare, resolve
from hone.train.parts import build_parts, check_best_metric, logged_metrics, metric_sum
from hone.train.recipes import DataSpec, LoadedRecipe, data_spec, load_recipe, one_line

__all__ = ["CHECK_ON_CPU_BYTES", "Prepared", "check_outputs", "prepare", "total_steps"]

log = logging.getLogger("hone.train")

#: A model of at most this many bytes of parameters is tried on two real samples before
#: launch; a bigger one on the meta device.
CHECK_ON_CPU_BYTES = 256 << 20


@dataclass
class Prepared:
    """A job checked before any process starts."""

    recipe: LoadedRecipe
    params: Params
    version: DatasetVersion
    spec: DataSpec
    workspace: Workspace
    logged: tuple[str, ...] = ()  # every metric the loop will log for this job

    @property
    def run_params(self) -> dict[str, Any]:
        return {"recipe": self.recipe.ref, "data": self.spec.ref, **self.params}


def prepare(
    recipe: str,
    data: str | DatasetVersion,
    overrides: Mapping[str, Any],
    *,
    world_size: int = 1,
    workspace: Workspace | None = None,
    where: str = "-p",
) -> Prepared:
    """Load the recipe, resolve its params, find the data, and build the model and its
    parts once (on two real samples, or on PyTorch's meta device for a big model): every
    mistake that does not need the workers shows here, with one message. ``where`` names
    the overrides in messages (``-p`` on the command line, ``params`` in the API)."""
    ws = (workspace or Workspace.discover()).require()
    cache_bytes()  # a garbage HONE_SPLIT_CACHE_BYTES is said here, not by every worker
    loaded = load_recipe(recipe)
    declared = declare(loaded.params, loaded.ref)
    params = resolve(declared, overrides, where)
    version = data if isinstance(data, DatasetVersion) else get_version(data, workspace=ws)
    if version.db.url != database_for(ws.store_uri).url:
        raise ValidationError(
            f"{version.ref} belongs to another workspace (its store is "
            f"{version.db.display_url()}); pass its reference, or that workspace"
        )
    spec = data_spec(version)
    if params.train_split not in spec.splits:
        raise ValidationError(
            f"train_split={params.train_split!r}: {version.ref} has splits "
            f"{', '.join(sorted(spec.splits))} (choose one with -p train_split=NAME, or "
            "split the version: hone data import ... --split train=0.8,test=0.2)"
        )
    validation_split(params, spec)
    rows = spec.splits[params.train_split]
    if rows < world_size:
        raise ValidationError(
            f"the {params.train_split} split of {version.ref} has {rows} row(s): fewer than "
            f"the job's {world_size} processes"
        )
    if params.batch_size % world_size:
        fits = params.batch_size - params.batch_size % world_size or world_size
        raise ValidationError(
            f"batch_size={params.batch_size} is the global batch: it must divide among the "
            f"job's {world_size} processes (e.g. -p batch_size={fits})"
        )
    import torch

    with torch.device("meta"):  # no memory, whatever the model's size
        model = loaded.model(params, spec)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    on_cpu = size <= CHECK_ON_CPU_BYTES  # real arithmetic on 2 samples: milliseconds
    if on_cpu:
        torch.manual_seed(params.seed)
        model = loaded.model(params, spec)
    total = total_steps(params, rows, world_size)
    parts = build_parts(loaded, params, spec, model, total)
    if loaded.member("loss") is None:  # a recipe's own loss may want other outputs
        if on_cpu:
            check_outputs(model, spec, loaded.ref, parts.metrics)
        else:  # shapes only (PyTorch's meta kernels take ~2 s to load the first time)
            with torch.device("meta"):
                check_outputs(model, spec, loaded.ref)
    elif on_cpu:
        check_loss(model, parts.loss, spec, loaded.ref)
    evaluated = validation_split(params, spec)
    logged = logged_metrics(spec, parts.metrics, evaluated is not None)
    check_best_metric(params, declared["best_metric"], logged)
    _warn_of_odd_settings(params, spec, evaluated, total)
    return Prepared(loaded, params, version, spec, ws, tuple(logged))


def total_steps(params: Params, rows: int, world_size: int) -> int:
    """Optimizer steps the job will take (as the loop counts them: each rank's shard of the
    training split, in batches of batch_size / world_size, the last one partial)."""
    per_rank = rows // world_size
    batch = params.batch_size // world_size
    total = params.epochs * -(-per_rank // batch)
    return int(min(total, params.max_steps) if params.max_steps else total)


def _warn_of_odd_settings(
    params: Params, spec: DataSpec, evaluated: str | None, total: int
) -> None:
    """Settings that train, but rarely as meant: said once, before launch."""
    if evaluated is None and params.val_split == "auto":
        log.warning(
            "hone: %s has no validation split (validation, val, valid or test besides %s): "
            "nothing is evaluated and no checkpoint is kept as best (give -p val_split=NAME, "
            "or split the version)",
            spec.ref[:30],
            params.train_split,
        )
    if evaluated is not None and evaluated == params.train_split:
        log.warning(
            "hone: val_split is the training split (%s): val/ metrics measure how well the "
            "model fits what it trained on, not how it generalizes",
            evaluated,
        )
    if params.warmup_steps >= total:
        log.warning(
            "hone: warmup_steps=%d is not below the job's %d steps: the learning rate never "
            "reaches lr=%g",
            params.warmup_steps,
            total,
            params.lr,
        )
    if spec.classes is not None and len(spec.classes) < 2:
        log.warning(
            "hone: %s has a single class (%r): a classifier learns nothing from it",
            spec.ref[:30],
            spec.classes[0] if spec.classes else None,
        )


def _samples(spec: DataSpec) -> Any:
    """Two samples as the loop gives them to the model, and their targets."""
    import torch

    dtype = getattr(torch, spec.dtype, None)
    if not isinstance(dtype, torch.dtype) or dtype == torch.float64:
        dtype = torch.float32  # what the loop gives the model (see loop._inputs)
    target = torch.zeros(2, dtype=torch.int64 if spec.classes is not None else torch.float32)
    return torch.zeros((2, *spec.shape), dtype=dtype), target


def check_loss(model: Any, loss: Any, spec: DataSpec, recipe: str) -> None:
    """A recipe's own loss, tried as the loop calls it on two samples: it must give one
    number that gradients flow back from."""
    sample, target = _samples(spec)
    try:
        value = loss(model(sample), target)
    except Exception as exc:
        raise ValidationError(
            f"recipe {recipe}: its loss failed on a batch of 2 of {spec.ref}'s samples: "
            f"{one_line(exc)}"
        ) from exc
    import torch

    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValidationError(
            f"recipe {recipe}: its loss gave {got} for a batch of 2; it must give one number "
            "(a tensor of one element: reduce it, e.g. .mean())"
        )
    if not value.requires_grad:
        raise ValidationError(
            f"recipe {recipe}: its loss gives a number no gradient flows back from (computed "
            "without the model's output, or under torch.no_grad())"
        )


def check_outputs(
    model: Any, spec: DataSpec, recipe: str, metrics: Mapping[str, Any] | None = None
) -> None:
    """A batch of two samples through the model (on the current default device: the CPU,
    or the meta device for shapes only): it must take the data's samples and give what
    the standard loss expects."""
    import torch

    sample, target = _samples(spec)
    try:
        with torch.no_grad():
            out = model(sample)
    except NotImplementedError:
        return  # an operation without a meta kernel: the first step will tell
    except Exception as exc:
        raise ValidationError(
            f"recipe {recipe}: the model does not take {spec.ref}'s samples (shape "
            f"{spec.shape}, {spec.dtype}): {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    shape = tuple(getattr(out, "shape", ()))
    if spec.classes is not None:
        expected: tuple[int, ...] = (2, spec.num_classes)
        ok = shape == expected
        wanted = f"{expected} (a score for each of its {spec.num_classes} classes)"
    else:
        ok = shape in ((2,), (2, 1))
        wanted = "(2,) or (2, 1) (one value a sample: its labels are numbers)"
    if not ok:
        raise ValidationError(
            f"recipe {recipe}: for a batch of 2 samples of {spec.ref} the model gives "
            f"{shape}; the standard loss wants {wanted} (or give the recipe a loss)"
        )
    for name, fn in (metrics or {}).items():
        try:
            with torch.no_grad():
                metric_sum(name, fn(out, target), 2)
        except ValidationError as exc:
            raise ValidationError(f"recipe {recipe}: {exc}") from None
        except Exception as exc:
            raise ValidationError(
                f"recipe {recipe}: metric {name!r} failed on a batch of 2: {one_line(exc)}"
            ) from exc
