"""Search spaces: what a study varies, declared by a recipe (or given on the command line).

Two forms, both Optuna's underneath:

- declarative, a dict of ranges: a list is a choice among its values; a dict with ``low``
  and ``high`` is a range (integers when both ends are integers), optionally ``log`` or
  ``step``::

      search_space = {"lr": {"low": 1e-4, "high": 1e-2, "log": True},
                      "channels": [16, 32, 64], "dropout": {"low": 0.0, "high": 0.4}}

- define-by-run, a function of Optuna's trial returning the params it chose::

      def search_space(trial):
          return {"lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True)}

Only the declarative form can be searched by the grid sampler (its values must be finite:
choices, or integer and stepped ranges).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hone.errors import ValidationError

if TYPE_CHECKING:
    import optuna

__all__ = ["Space", "callable_name", "parse_space", "space_from_text"]

#: The grid sampler enumerates at most this many points.
MAX_GRID = 100_000
#: A stepped range has at most this many values (Optuna's decimal arithmetic on a step far
#: smaller than its range fails in every trial).
MAX_STEPS = 10**9
_RANGE_KEYS = {"low", "high", "log", "step"}
_CHOICE_TYPES = (bool, int, float, str, type(None))

Define = Callable[["optuna.Trial"], Mapping[str, Any]]


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool
    step: float | None
    integer: bool

    def to_json(self) -> dict[str, Any]:
        number = int if self.integer else float
        out: dict[str, Any] = {"low": number(self.low), "high": number(self.high)}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = number(self.step)
        return out


Dimension = Range | tuple[Any, ...]


@dataclass(frozen=True)
class Space:
    """A study's search space: ``dims`` (declarative) or ``define`` (a function)."""

    dims: dict[str, Dimension] | None
    define: Define | None
    where: str  # where it came from, for messages: "recipe builtin:cnn", "--space"
    fingerprint: str  # equal for the same space: a study is continued only with it

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The params this trial tries."""
        if self.dims is None:
            assert self.define is not None
            chosen = self.define(trial)
            if not isinstance(chosen, Mapping) or not chosen:
                raise ValidationError(
                    f"the search space of {self.where} must return a dict of params "
                    f"(name: value), got {type(chosen).__name__}"
                    + (" (empty)" if isinstance(chosen, Mapping) else "")
                )
            return dict(chosen)
        out: dict[str, Any] = {}
        for name, dim in self.dims.items():
            if isinstance(dim, tuple):
                out[name] = trial.suggest_categorical(name, list(dim))
            elif dim.integer:
                out[name] = trial.suggest_int(
                    name, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log
                )
            else:
                out[name] = trial.suggest_float(name, dim.low, dim.high, step=dim.step, log=dim.log)
        return out

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.dims) if self.dims is not None else ()

    def baseline(self, defaults: Mapping[str, Any]) -> dict[str, Any] | None:
        """``defaults``' values of the searched params, if every one lies in the space
        (a declarative one): a first trial that the study must beat."""
        if self.dims is None:
            return None
        chosen: dict[str, Any] = {}
        for name, dim in self.dims.items():
            value = defaults.get(name)
            if isinstance(dim, tuple):
                if value not in dim:
                    return None
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not dim.low <= value <= dim.high
                or (dim.integer and value != int(value))
            ):
                return None
            elif dim.step is not None:
                index = (value - dim.low) / dim.step
                if abs(index - round(index)) > 1e-9:
                    return None
            chosen[name] = value
        return chosen

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every dimension, for the grid sampler."""
        if self.dims is None:
            raise ValidationError(
                f"--sampler grid needs a declarative search space (a dict of choices and "
                f"ranges); {self.where} is a function: use tpe, random or cmaes"
            )
        counts: dict[str, int] = {}
        for name, dim in self.dims.items():
            if isinstance(dim, tuple):
                counts[name] = len(dim)
            elif dim.step is not None or (dim.integer and not dim.log):
                counts[name] = math.floor((dim.high - dim.low) / (dim.step or 1) + 1e-9) + 1
            else:
                kind = "a log range" if dim.log else "a continuous range"
                raise ValidationError(
                    f"--sampler grid cannot search {name}: it is {kind} "
                    f"({dim.low:g} to {dim.high:g}); give it a list of values or a step"
                )
        points = math.prod(counts.values())  # counted before a value is listed
        if points > MAX_GRID:
            raise ValidationError(
                f"--sampler grid: the space has {points:,} points (at most {MAX_GRID:,})"
            )
        grid: dict[str, list[Any]] = {}
        for name, dim in self.dims.items():
            if isinstance(dim, tuple):
                grid[name] = list(dim)
            elif dim.integer:
                grid[name] = list(range(int(dim.low), int(dim.high) + 1, int(dim.step or 1)))
            else:
                step = float(dim.step or 1)
                grid[name] = [dim.low + i * step for i in range(counts[name])]
        return grid

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def describe(self) -> dict[str, Any]:
        """The space as JSON (a function is named, not shown)."""
        if self.dims is None:
            return {"define_by_run": self.where}
        return {
            name: list(dim) if isinstance(dim, tuple) else dim.to_json()
            for name, dim in self.dims.items()
        }


def parse_space(given: Any, where: str) -> Space:
    """A recipe's ``search_space`` (dict or function), checked; errors name ``where``."""
    if given is None:
        raise ValidationError(
            f"{where} declares no search space: give the recipe a search_space (a dict of "
            "ranges, or a function of Optuna's trial), or pass --space"
        )
    if callable(given) and not isinstance(given, Mapping):
        return Space(None, given, where, _function_fingerprint(given, where))
    if not isinstance(given, Mapping):
        raise ValidationError(
            f"the search space of {where} must be a dict of ranges or a function of Optuna's "
            f"trial, got {type(given).__name__}"
        )
    if not given:
        raise ValidationError(f"the search space of {where} is empty: name at least one param")
    dims: dict[str, Dimension] = {}
    for name, value in given.items():
        if not isinstance(name, str) or not name:
            raise ValidationError(f"the search space of {where}: {name!r} is not a param name")
        dims[name] = _dimension(name, value, where)
    described = {n: list(d) if isinstance(d, tuple) else d.to_json() for n, d in dims.items()}
    fingerprint = hashlib.sha256(
        json.dumps(described, sort_keys=True, default=repr).encode()
    ).hexdigest()
    return Space(dims, None, where, fingerprint)


def space_from_text(text: str) -> Space:
    """``--space``: a JSON object, or a path to a file holding one."""
    from pathlib import Path

    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        path = Path(text)
        if text.strip()[:1] in ("{", "["):
            raise ValidationError(
                f"--space: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise ValidationError(
                f"--space {text[:80]!r}: not a JSON object, and not a readable file ({why})"
            ) from None
        try:
            given = json.loads(source)
        except json.JSONDecodeError as err:
            raise ValidationError(
                f"--space {text[:80]}: not valid JSON: {err.msg} at line {err.lineno} "
                f"column {err.colno}"
            ) from None
    if not isinstance(given, dict):
        raise ValidationError(
            f"--space: give a JSON object of ranges and choices, e.g. "
            f'\'{{"lr": {{"low": 0.0001, "high": 0.1, "log": true}}}}\', got {type(given).__name__}'
        )
    return parse_space(given, "--space")


def _dimension(name: str, value: Any, where: str) -> Dimension:
    at = f"the search space of {where}, {name}"
    if isinstance(value, list | tuple):
        if not value:
            raise ValidationError(f"{at}: an empty list of choices")
        for choice in value:
            if not isinstance(choice, _CHOICE_TYPES) or (
                isinstance(choice, float) and not math.isfinite(choice)
            ):
                raise ValidationError(
                    f"{at}: choice {choice!r} is not a number, text, true/false or null"
                )
        if len({json.dumps(c) for c in value}) != len(value):
            raise ValidationError(f"{at}: the choices repeat a value")
        return tuple(value)
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{at}: give a list of choices or a range {{'low': ..., 'high': ...}}, got {value!r}"
        )
    unknown = set(value) - _RANGE_KEYS
    if unknown or "low" not in value or "high" not in value:
        raise ValidationError(
            f"{at}: a range has low and high (and optionally log or step); "
            + (
                f"unknown key(s) {', '.join(map(repr, sorted(unknown, key=str)))}"
                if unknown
                else ""
            )
            + ("" if unknown else f"got {dict(value)!r}")
        )
    low, high, log, step = value["low"], value["high"], value.get("log", False), value.get("step")
    for end, number in (("low", low), ("high", high), ("step", step)):
        if number is None and end == "step":
            continue
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ValidationError(f"{at}: {end} must be a number, got {str(number)[:40]!r}")
        if not -1e300 < number < 1e300:  # (an int of 400 digits is no float Optuna can use)
            raise ValidationError(f"{at}: {end} must be finite, got {str(number)[:40]}")
    if not isinstance(log, bool):
        raise ValidationError(f"{at}: log must be true or false, got {log!r}")
    if low > high:
        raise ValidationError(f"{at}: low {low} is above high {high}")
    if log and low <= 0:
        raise ValidationError(f"{at}: a log range must start above 0, got low {low}")
    if log and step is not None:
        raise ValidationError(f"{at}: a range is log or stepped, not both")
    if step is not None and step <= 0:
        raise ValidationError(f"{at}: step must be above 0, got {step}")
    if step is not None and (high - low) / step > MAX_STEPS:
        raise ValidationError(
            f"{at}: step {step:g} is too small for {low:g} to {high:g} (more than "
            f"{MAX_STEPS:,} values): give a larger step, or none"
        )
    integer = (
        isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int))
    )
    return Range(float(low), float(high), log, None if step is None else float(step), integer)


def callable_name(function: Any) -> str:
    """A function's name as every process spells it (no address in it)."""
    if isinstance(function, functools.partial):
        return f"partial({callable_name(function.func)})"
    target: Any = function
    if not inspect.isfunction(function) and not inspect.ismethod(function):
        target = type(function)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


def _function_fingerprint(function: Callable[..., Any], where: str) -> str:
    """The same for the same function in every process: its source where Python has it,
    else its qualified name (a partial's function and arguments; a callable's class)."""
    target: Any = function
    extra = ""
    if isinstance(function, functools.partial):
        target = function.func
        extra = repr((function.args, sorted(function.keywords.items())))
    elif not inspect.isfunction(function) and not inspect.ismethod(function):
        target = type(function)
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        source = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
    return hashlib.sha256(f"{where}\n{source}\n{extra}".encode()).hexdigest()
