"""Recipes by reference: builtins, modules, files; every mistake in one message."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hone.errors import ValidationError
from hone.train.builtin import image_layout
from hone.train.params import declare, resolve
from hone.train.recipes import DataSpec, load_recipe

DIGITS = DataSpec(
    "digits@x",
    (64,),
    "float64",
    tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8)),
    tuple(range(10)),
    {"train": 10},
)
IRIS = DataSpec("iris@x", (4,), "float64", ("sepal length", "sepal width", "a", "b"), (0, 1, 2), {})


def _build(ref: str, spec: DataSpec) -> torch.nn.Module:
    recipe = load_recipe(ref)
    return recipe.model(resolve(declare(recipe.params, ref), {}), spec)


def test_builtins_build_for_their_kind_of_data() -> None:
    cnn = _build("builtin:cnn", DIGITS)
    assert cnn(torch.zeros(3, 64)).shape == (3, 10)
    mlp = _build("builtin:mlp", IRIS)
    assert mlp(torch.zeros(5, 4)).shape == (5, 3)
    images = DataSpec("pics@x", (12, 10, 3), "uint8", ("image",), ("cat", "dog"), {})
    assert _build("builtin:cnn", images)(torch.zeros(2, 12, 10, 3, dtype=torch.uint8)).shape == (
        2,
        2,
    )
    regression = DataSpec("r@x", (3,), "float32", ("a", "b", "c"), None, {})
    assert _build("builtin:mlp", regression)(torch.zeros(4, 3)).shape == (4, 1)


def test_the_cnn_refuses_tabular_data_and_says_what_to_use() -> None:
    with pytest.raises(ValidationError, match=r"builtin:cnn needs image-shaped.*builtin:mlp"):
        _build("builtin:cnn", IRIS)
    assert image_layout(DIGITS) == ((1, 8, 8), False)


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_recipe_file_with_an_object(tmp_path: Path) -> None:
    ref = _write(
        tmp_path,
        "mine.py",
        "import torch\n"
        "class Tiny:\n"
        "    params = {'width': 3}\n"
        "    def model(self, params, data):\n"
        "        return torch.nn.Linear(data.features, params.width)\n",
    )
    assert _build(f"{ref}:Tiny", IRIS).out_features == 3
    module_level = _write(
        tmp_path,
        "flat.py",
        "import torch\ndef model(params, data):\n    return torch.nn.Linear(data.features, 2)\n",
    )
    assert _build(module_level, IRIS).out_features == 2


@pytest.mark.parametrize(
    ("source", "suffix", "message"),
    [
        ("import no_such_package_xyz\n", "", "does not import: ModuleNotFoundError"),
        ("def model(:\n", "", "does not import: SyntaxError"),
        ("raise RuntimeError('boom')\n", "", r"does not import: RuntimeError: boom \(.*line 1\)"),
        ("x = 1\n", "", r"has no model\(params, data\) function"),
        ("model = 3\n", "", "model must be a function"),
        ("def model(p, d): pass\nloss = 'mse'\n", "", "loss must be a function"),
        ("def model(p, d): pass\nparams = {'x': [1]}\n", "", "use a bool, int, float or str"),
        ("def model(p, d): pass\n", ":Nope", "has no 'Nope'"),
        ("class R:\n    def __init__(self, x): pass\n", ":R", "instantiated without arguments"),
    ],
)
def test_broken_recipes_are_one_message(
    tmp_path: Path, source: str, suffix: str, message: str
) -> None:
    ref = _write(tmp_path, "broken.py", source) + suffix
    with pytest.raises(ValidationError, match=message):
        load_recipe(ref)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("builtin:resnet", "no such builtin; choose one of builtin:cnn, builtin:mlp"),
        ("no_such_module_abc", "no module named 'no_such_module_abc'"),
        ("not a module", "neither a module name"),
        ("missing_file.py", "no file missing_file.py"),
        ("", "give builtin:NAME"),
        ("x\x00y", "give builtin:NAME"),
        ("json:", "is not an object name"),
        ("json:dumps.x.y", "has no 'dumps.x.y'"),
    ],
)
def test_bad_references(ref: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_recipe(ref)


def test_a_model_that_is_not_a_module_is_refused(tmp_path: Path) -> None:
    ref = _write(tmp_path, "nm.py", "def model(params, data):\n    return 42\n")
    with pytest.raises(ValidationError, match=r"returned int, not a torch\.nn\.Module"):
        _build(ref, IRIS)
    failing = _write(tmp_path, "f.py", "def model(params, data):\n    return 1 / 0\n")
    with pytest.raises(ValidationError, match=r"model\(\) failed: ZeroDivisionError"):
        _build(failing, IRIS)
