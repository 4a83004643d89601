"""Recipes: what a model is, given its hyperparameters and the data it will see.

A recipe is any object (a module, a class, an instance) with these members; only ``model``
is required::

    params = {"hidden": 128, "lr": 0.003}          # declared defaults (types from them)

    def model(params, data) -> torch.nn.Module     # data: a DataSpec
    def loss(params, data) -> callable             # (output, target) -> scalar tensor
    def metrics(params, data) -> dict[str, callable]   # (output, target) -> per-sample values
    def optimizer(params, model) -> torch.optim.Optimizer
    def scheduler(params, optimizer, total_steps) -> LRScheduler
    search_space = {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}   # hone tune: ranges,
    def search_space(trial) -> dict                # ... or Optuna's define-by-run

A reference names it: ``builtin:cnn``, ``package.module``, ``package.module:object`` or
``path/to/file.py[:object]``. A class is instantiated without arguments.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hone.errors import HoneError, ValidationError

if TYPE_CHECKING:
    import torch

    from hone.data.dataset import DatasetVersion
    from hone.train.params import Params

__all__ = ["DataSpec", "LoadedRecipe", "Recipe", "data_spec", "load_recipe", "one_line"]

_OPTIONAL = ("loss", "metrics", "optimizer", "scheduler")  # search_space: hone.tune checks it
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@runtime_checkable
class Recipe(Protocol):
    """The one member every recipe has; see the module's docstring for the optional ones."""

    def model(self, params: Params, data: DataSpec) -> torch.nn.Module: ...


@dataclass(frozen=True)
class DataSpec:
    """What a recipe may know of its dataset version when it builds a model."""

    ref: str  # name@id
    shape: tuple[int, ...]  # one sample's features
    dtype: str
    feature_names: tuple[str, ...]
    classes: tuple[Any, ...] | None  # sorted label values; None for regression or no labels
    splits: dict[str, int]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0

    @property
    def task(self) -> str:
        return "classification" if self.classes is not None else "regression"

    @property
    def features(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


def data_spec(version: DatasetVersion) -> DataSpec:
    manifest = version.manifest
    if manifest.label is None:
        raise ValidationError(
            f"{version.ref} has no labels: the standard loop trains on labeled versions"
        )
    return DataSpec(
        ref=f"{version.name}@{version.id}",
        shape=tuple(manifest.features.shape),
        dtype=manifest.features.dtype,
        feature_names=tuple(manifest.feature_names),
        classes=tuple(manifest.classes) if manifest.classes is not None else None,
        splits=dict(version.splits),
    )


@dataclass(frozen=True)
class LoadedRecipe:
    ref: str
    obj: Any

    @property
    def params(self) -> Mapping[str, Any] | None:
        return getattr(self.obj, "params", None)

    def member(self, name: str) -> Callable[..., Any] | None:
        found = getattr(self.obj, name, None)
        if found is None:
            return None
        if not callable(found):
            raise ValidationError(f"recipe {self.ref}: {name} must be a function")
        return found  # type: ignore[no-any-return]

    def call(self, name: str, *args: Any) -> Any:
        """The recipe's ``name`` applied to ``args`` (None if it has no such member); its
        failure is one message naming the recipe and where in its code."""
        member = self.member(name)
        if member is None:
            return None
        try:
            return member(*args)
        except HoneError:
            raise
        except (Exception, SystemExit) as exc:  # sys.exit() in a recipe is its failure too
            raise ValidationError(f"recipe {self.ref}: {name}() failed: {one_line(exc)}") from exc

    def source(self) -> tuple[str, str] | None:
        """The recipe's source file (name, text), to keep with a run; None for a builtin
        (hone's version says what it was) or when there is no readable file."""
        if self.ref.startswith("builtin:"):
            return None
        target = self.obj if inspect.ismodule(self.obj) else type(self.obj)
        try:
            path = inspect.getsourcefile(target)
            if path is None:
                return None
            return Path(path).name, Path(path).read_text(errors="replace")
        except (TypeError, OSError):
            return None

    def model(self, params: Params, data: DataSpec) -> torch.nn.Module:
        import torch

        built = self.call("model", params, data)
        if not isinstance(built, torch.nn.Module):
            raise ValidationError(
                f"recipe {self.ref}: model() returned {type(built).__name__}, not a torch.nn.Module"
            )
        return built


def load_recipe(ref: str) -> LoadedRecipe:
    """The recipe ``ref`` names, checked for its members; import errors in one message."""
    if not isinstance(ref, str) or not ref.strip() or "\x00" in ref or len(ref) > 1000:
        raise ValidationError(
            f"recipe {ref!r}: give builtin:NAME, a module, module:object or file.py[:object]"
        )
    ref = ref.strip()
    if ref.startswith("builtin:"):
        from hone.train.builtin import BUILTIN

        name = ref.removeprefix("builtin:")
        if name not in BUILTIN:
            raise ValidationError(
                f"recipe {ref}: no such builtin; choose one of "
                f"{', '.join('builtin:' + n for n in sorted(BUILTIN))}"
            )
        return _checked(LoadedRecipe(ref, BUILTIN[name]()))
    where, _, attr = _split(ref)
    if where.endswith(".py"):
        # Recorded on the run as an absolute path: a resume from another folder finds it.
        path = Path(where).absolute()
        module = _import_file(ref, path)
        ref = f"{path}:{attr}" if attr else str(path)
    else:
        module = _import(ref, where)
    obj: Any = module
    if attr:
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise ValidationError(f"recipe {ref}: {where} has no {attr!r}")
            obj = getattr(obj, part)
    if inspect.isclass(obj):
        try:
            obj = obj()
        except (Exception, SystemExit) as exc:
            raise ValidationError(
                f"recipe {ref}: {attr}() (a class is instantiated without arguments) "
                f"failed: {type(exc).__name__}: {exc}"
            ) from exc
    return _checked(LoadedRecipe(ref, obj))


def _split(ref: str) -> tuple[str, str, str]:
    # A Windows drive ("C:\\x.py") is not ours to support; "file.py:obj" and "mod:obj" are.
    where, sep, attr = ref.rpartition(":")
    if not sep:
        return ref, "", ""
    if not attr or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", attr):
        raise ValidationError(f"recipe {ref}: {attr!r} after ':' is not an object name")
    return where, sep, attr


def _import(ref: str, name: str) -> Any:
    if not _MODULE.fullmatch(name):
        raise ValidationError(
            f"recipe {ref}: {name!r} is neither a module name (package.module) nor a .py file"
        )
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ValidationError(
                f"recipe {ref}: no module named {exc.name!r} (is it installed, or on "
                "PYTHONPATH? a file is given as path/to/file.py)"
            ) from None
        raise ValidationError(f"recipe {ref} does not import: {one_line(exc)}") from None
    except (Exception, SystemExit) as exc:
        raise ValidationError(f"recipe {ref} does not import: {one_line(exc)}") from None


def _import_file(ref: str, path: Path) -> Any:
    if not path.is_file():
        raise ValidationError(f"recipe {ref}: no file {os.path.relpath(path)}")
    name = f"hone_recipe_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValidationError(f"recipe {ref}: cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ValidationError(f"recipe {ref} does not import: {one_line(exc)}") from None
    return module


def one_line(exc: BaseException) -> str:
    """The error, and the innermost place in the user's own code that it came through
    (not Python's import machinery, PyTorch or hone)."""
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not any(part in name for part in _NOT_THE_USERS):
            where = f" ({name}, line {tb.tb_lineno})"
        tb = tb.tb_next
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}{where}"


_NOT_THE_USERS = (
    "importlib",
    f"{os.sep}torch{os.sep}",
    f"{os.sep}hone{os.sep}",
    "<frozen ",
)


def _checked(recipe: LoadedRecipe) -> LoadedRecipe:
    if recipe.member("model") is None:
        raise ValidationError(
            f"recipe {recipe.ref} has no model(params, data) function: a recipe builds its "
            "model from its params and the dataset's spec"
        )
    for name in _OPTIONAL:
        recipe.member(name)  # present and not callable: refused here
    from hone.train.params import declare

    declare(recipe.params, recipe.ref)  # malformed declarations are refused before launch
    return recipe
