"""The parts a recipe may supply beside its model (loss, metrics, optimizer, scheduler),
or hone's defaults, each checked for what the loop will do with it.

The launcher builds them once on the model it checked (so a recipe whose optimizer()
returns "sgd" is refused before any process starts), and every worker builds them again
for training, through the same functions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hone.errors import ValidationError
from hone.train.params import Params
from hone.train.recipes import DataSpec, LoadedRecipe

__all__ = [
    "BUILT_IN_METRICS",
    "Parts",
    "build_parts",
    "check_best_metric",
    "is_plateau",
    "logged_metrics",
    "metric_sum",
]

#: What the loop evaluates itself: a recipe's metric of the same name would shadow it.
BUILT_IN_METRICS = ("loss", "acc")
_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,99}")

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Parts:
    loss: Loss
    metrics: dict[str, Callable[..., Any]]
    optimizer: torch.optim.Optimizer
    scheduler: Any  # an LRScheduler, or ReduceLROnPlateau (stepped once an epoch)


def build_parts(
    recipe: LoadedRecipe, params: Params, spec: DataSpec, model: nn.Module, total_steps: int
) -> Parts:
    optimizer = _optimizer(recipe, params, model)
    return Parts(
        loss=_loss(recipe, params, spec),
        metrics=_metrics(recipe, params, spec),
        optimizer=optimizer,
        scheduler=_scheduler(recipe, params, optimizer, total_steps),
    )


def is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def logged_metrics(spec: DataSpec, metrics: Mapping[str, Any], evaluated: bool) -> list[str]:
    """Every metric name the standard loop logs for this job."""
    names = ["train/loss", "train/epoch_loss", "epoch", "lr"]
    if evaluated:
        names += [f"val/{name}" for name in BUILT_IN_METRICS if name != "acc" or spec.classes]
        names += [f"val/{name}" for name in metrics]
    return names


def check_best_metric(params: Params, default: str, logged: list[str]) -> None:
    """A best_metric the job never logs would keep no best checkpoint, silently: refused
    (the default is let be when the job evaluates nothing)."""
    if params.best_metric in logged or (params.best_metric == default and "val/loss" not in logged):
        return
    raise ValidationError(
        f"best_metric={params.best_metric!r}: this job does not log it; choose one of "
        f"{', '.join(logged)}"
    )


def _loss(recipe: LoadedRecipe, params: Params, spec: DataSpec) -> Loss:
    given = recipe.call("loss", params, spec)
    if given is not None:
        if not callable(given):
            raise ValidationError(
                f"recipe {recipe.ref}: loss() returned {type(given).__name__}; it returns a "
                "function of (output, target), e.g. torch.nn.CrossEntropyLoss()"
            )
        return given  # type: ignore[no-any-return]
    if spec.classes is not None:
        return nn.CrossEntropyLoss()
    mse = nn.MSELoss()
    return lambda out, y: mse(out.reshape(y.shape[0], -1).squeeze(1), y.float())


def _metrics(recipe: LoadedRecipe, params: Params, spec: DataSpec) -> dict[str, Callable[..., Any]]:
    given = recipe.call("metrics", params, spec)
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise ValidationError(
            f"recipe {recipe.ref}: metrics() returned {type(given).__name__}; it returns a "
            "dict of name to a function of (output, target)"
        )
    for name, fn in given.items():
        if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
            raise ValidationError(
                f"recipe {recipe.ref}: metric name {name!r}: use letters, digits, _ and ."
            )
        if name in BUILT_IN_METRICS:
            raise ValidationError(
                f"recipe {recipe.ref}: metric {name!r} is one the loop computes itself "
                f"(val/{name}); give yours another name"
            )
        if not callable(fn):
            raise ValidationError(
                f"recipe {recipe.ref}: metric {name!r} is {type(fn).__name__}, not a function "
                "of (output, target)"
            )
    return dict(given)


def metric_sum(name: str, value: Any, samples: int) -> float:
    """A recipe metric's value for one batch as a sum over its samples: one value per
    sample is summed, one value for the batch is taken as its mean."""
    tensor = torch.as_tensor(value).detach().double()
    if tensor.ndim == 0:
        total = float(tensor) * samples
    elif tuple(tensor.shape) == (samples,):
        total = float(tensor.sum())
    else:
        raise ValidationError(
            f"metric {name!r} gave shape {tuple(tensor.shape)} for a batch of {samples}: give "
            "one value per sample, or one value for the batch (its mean)"
        )
    if math.isnan(total):
        raise ValidationError(f"metric {name!r} gave NaN")
    return total


def _optimizer(recipe: LoadedRecipe, params: Params, model: nn.Module) -> torch.optim.Optimizer:
    if not any(p.requires_grad for p in model.parameters()):
        raise ValidationError(
            f"recipe {recipe.ref}: the model has no parameters to train (none at all, or "
            "every one frozen)"
        )
    given = recipe.call("optimizer", params, model)
    if given is None:
        return _default_optimizer(params, model)
    if not isinstance(given, torch.optim.Optimizer):
        raise ValidationError(
            f"recipe {recipe.ref}: optimizer() returned {type(given).__name__}, not a "
            "torch.optim.Optimizer (to choose a built-in one, use -p optimizer=NAME)"
        )
    own = {id(p) for p in model.parameters()}
    held = [p for group in given.param_groups for p in group["params"]]
    if not held or any(id(p) not in own for p in held):
        raise ValidationError(
            f"recipe {recipe.ref}: optimizer() must optimize the model it is given "
            "(optimizer(params, model) → torch.optim.X(model.parameters(), ...)); its "
            "parameters are not that model's"
        )
    return given


def _default_optimizer(params: Params, model: nn.Module) -> torch.optim.Optimizer:
    weights = model.parameters()
    if params.optimizer == "sgd":
        return torch.optim.SGD(
            weights, lr=params.lr, momentum=params.momentum, weight_decay=params.weight_decay
        )
    if params.optimizer == "adam":
        return torch.optim.Adam(weights, lr=params.lr, weight_decay=params.weight_decay)
    return torch.optim.AdamW(weights, lr=params.lr, weight_decay=params.weight_decay)


def _scheduler(
    recipe: LoadedRecipe, params: Params, optimizer: torch.optim.Optimizer, total_steps: int
) -> Any:
    given = recipe.call("scheduler", params, optimizer, total_steps)
    if given is None:
        return _default_scheduler(params, optimizer, total_steps)
    needed = ("step", "state_dict", "load_state_dict")
    if not all(callable(getattr(given, member, None)) for member in needed):
        raise ValidationError(
            f"recipe {recipe.ref}: scheduler() returned {type(given).__name__}, not a "
            "learning-rate scheduler (torch.optim.lr_scheduler.*)"
        )
    if getattr(given, "optimizer", optimizer) is not optimizer:
        raise ValidationError(
            f"recipe {recipe.ref}: scheduler() must schedule the optimizer it is given"
        )
    return given


def _default_scheduler(
    params: Params, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    warmup, total = params.warmup_steps, max(total_steps, 1)
    cosine = params.scheduler == "cosine"

    def factor(step: int) -> float:
        if step < warmup:
            return float((step + 1) / warmup)
        if not cosine:
            return 1.0
        done = min(1.0, (step - warmup) / max(total - warmup, 1))
        return 0.5 * (1.0 + math.cos(math.pi * done))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
