"""Hyperparameters: declared with their defaults (the default's type is the param's type),
overridden with ``-p name=value`` and checked before any process starts.

The standard loop's own params (``LOOP_PARAMS``) come first; a recipe's ``params`` add to
them and may change their defaults (a recipe that trains best at ``lr=0.01`` says so).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hone.errors import ValidationError

__all__ = ["LOOP_PARAMS", "Params", "declare", "parse_overrides", "resolve"]

#: The standard loop's params and their defaults. ``batch_size`` is the global batch:
#: each of N ranks takes batch_size / N samples a step, so a job's result does not depend
#: on how many processes ran it.
LOOP_PARAMS: dict[str, Any] = {
    "epochs": 10,
    "max_steps": 0,  # 0: no limit; training stops at whichever comes first
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 0.01,
    "optimizer": "adamw",  # adamw | adam | sgd
    "momentum": 0.9,  # sgd only
    "scheduler": "cosine",  # cosine | constant
    "warmup_steps": 0,
    "grad_clip": 1.0,  # max gradient norm; 0 turns clipping off
    "amp": "auto",  # auto (on where the device supports it) | on | off
    "seed": 0,
    "train_split": "train",
    "val_split": "auto",  # auto: validation, val or test if the version has one; none: off
    "checkpoint_every": 0,  # also every N steps (0: at the end of each epoch only)
    "keep_last": 2,
    "keep_best": 1,
    "best_metric": "val/loss",
    "best_mode": "auto",  # auto: max for names with acc/f1/auc/precision/recall, else min
    "log_every": 1,  # steps between train/loss points
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adamw", "adam", "sgd"),
    "scheduler": ("cosine", "constant"),
    "amp": ("auto", "on", "off"),
    "best_mode": ("auto", "min", "max"),
}
_AT_LEAST: dict[str, float] = {
    "epochs": 1,
    "max_steps": 0,
    "batch_size": 1,
    "weight_decay": 0,
    "momentum": 0,
    "warmup_steps": 0,
    "grad_clip": 0,
    "seed": 0,
    "checkpoint_every": 0,
    "keep_last": 1,
    "keep_best": 0,
    "log_every": 1,
}
_AT_MOST: dict[str, float] = {
    "momentum": 1,
    "seed": 2**64 - 1,  # what torch.manual_seed takes
}
#: Integers beyond this reach no loop, and PyTorch refuses them.
MAX_INT = 2**63 - 1
_KINDS = (bool, int, float, str)
_KIND_NAMES: dict[type, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "text",
}
MAX_NAME = 100
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


class Params(dict[str, Any]):
    """Resolved hyperparameters: a dict that also reads as attributes (``p.lr``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no param {name!r}; the params are {', '.join(self)}") from None


def declare(recipe_params: Mapping[str, Any] | None, recipe: str) -> dict[str, Any]:
    """The loop's params with the recipe's added (or their defaults changed)."""
    declared = dict(LOOP_PARAMS)
    if recipe_params is None:
        return declared
    if not isinstance(recipe_params, Mapping):
        raise ValidationError(
            f"recipe {recipe}: params must be a dict of name: default, got "
            f"{type(recipe_params).__name__}"
        )
    for name, default in recipe_params.items():
        _check_name(name, f"recipe {recipe}: param")
        if not isinstance(default, _KINDS):
            raise ValidationError(
                f"recipe {recipe}: param {name!r} has a default of type "
                f"{type(default).__name__}; use a bool, int, float or str (its type is the "
                "param's type)"
            )
        if name in LOOP_PARAMS:
            default = _convert(name, default, type(LOOP_PARAMS[name]), f"recipe {recipe}: default")
        declared[name] = default
    for name, value in declared.items():
        _check_value(name, value, f"recipe {recipe}'s default")
    return declared


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``["lr=0.003", "hidden=64"]`` as a dict of text; each name at most once."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValidationError(f"-p {pair!r}: write name=value, e.g. -p lr=0.003")
        _check_name(name, "-p")
        if name in found:
            raise ValidationError(f"-p {name} is given twice")
        found[name] = value.strip()
    return found


def resolve(declared: Mapping[str, Any], overrides: Mapping[str, Any], where: str = "-p") -> Params:
    """Defaults with ``overrides`` (text from the command line, or values) applied; an
    unknown name or a value of the wrong type is refused, naming the declared ones.
    ``where`` names the overrides in messages (``-p``, or ``params`` for the API)."""
    if not isinstance(overrides, Mapping):
        raise ValidationError(
            f"{where}: give a dict of name to value, got {type(overrides).__name__}"
        )
    params = Params(declared)
    for name, value in overrides.items():
        if name not in declared:
            near = sorted(declared)
            raise ValidationError(f"unknown param {name!r}; this recipe takes {', '.join(near)}")
        kind = type(declared[name])
        params[name] = _convert(name, value, kind, where)
        _check_value(name, params[name], where)
    return params


def _convert(name: str, value: Any, kind: type, where: str) -> Any:
    if isinstance(value, str) and kind is not str:
        return _from_text(name, value, kind, where)
    if not isinstance(value, bool | str):  # NumPy's and PyTorch's numbers are numbers too
        if kind is int and isinstance(value, numbers.Integral):
            return int(value)
        if kind is float and isinstance(value, numbers.Real):
            try:
                return float(value)
            except OverflowError:
                raise ValidationError(
                    f"{where} {name}={value!r}: too large a number for {name}"
                ) from None
    if kind is bool and type(value).__name__ == "bool_":  # numpy.bool_
        return bool(value)
    if type(value) is not kind:
        raise ValidationError(
            f"{where} {name}={value!r}: {name} is {_KIND_NAMES[kind]}, not "
            f"{_KIND_NAMES.get(type(value), type(value).__name__)}"
        )
    return value


def _from_text(name: str, text: str, kind: type, where: str) -> Any:
    wrong = ValidationError(f"{where} {name}={text!r}: {name} is {_KIND_NAMES[kind]}")
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValidationError(f"{where} {name}={text!r}: {name} is true or false")
    # int() and float() read full-width digits and underscores ("1e-3_0" is 1e-30).
    if not text.isascii() or "_" in text:
        raise wrong
    try:
        return int(text, 10) if kind is int else float(text)
    except ValueError:
        raise wrong from None


def _check_value(name: str, value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{where} {name}={value!r}: give a finite number")
    if isinstance(value, str) and ("\x00" in value or len(value) > 1000):
        raise ValidationError(f"{where} {name}: text of at most 1000 characters, no NUL bytes")
    choices = _CHOICES.get(name)
    if choices is not None and value not in choices:
        raise ValidationError(f"{where} {name}={value!r}: choose one of {', '.join(choices)}")
    low = _AT_LEAST.get(name)
    if low is not None and value < low:
        raise ValidationError(f"{where} {name}={value!r}: {name} must be at least {low:g}")
    high = _AT_MOST.get(name, MAX_INT if isinstance(value, int) else None)
    if high is not None and not isinstance(value, bool) and value > high:
        raise ValidationError(f"{where} {name}={value!r}: {name} must be at most {high:g}")
    if isinstance(value, int) and not isinstance(value, bool) and value < -MAX_INT:
        raise ValidationError(f"{where} {name}={value!r}: too large a number")
    if name == "lr" and value <= 0:
        raise ValidationError(f"{where} lr={value!r}: the learning rate must be positive")


def _check_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise ValidationError(
            f"{where} name {name!r}: use letters, digits, _ and . (not first a digit), at "
            f"most {MAX_NAME} characters"
        )
