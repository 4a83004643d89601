"""Hyperparameters: declared defaults, typed overrides, refused before any process starts."""

from __future__ import annotations

import pytest

from hone.errors import ValidationError
from hone.train.params import LOOP_PARAMS, declare, parse_overrides, resolve


def test_overrides_take_the_declared_type() -> None:
    declared = declare({"hidden": 128, "dropout": 0.1, "act": "relu", "bn": False}, "r")
    params = resolve(
        declared,
        parse_overrides(["hidden=64", "dropout=0", "act=gelu", "bn=true", "lr=0.003", "epochs=2"]),
    )
    assert params.hidden == 64 and isinstance(params.hidden, int)
    assert params.dropout == 0.0 and isinstance(params.dropout, float)
    assert params.act == "gelu" and params.bn is True
    assert params.lr == 0.003 and params.epochs == 2
    assert params.batch_size == LOOP_PARAMS["batch_size"]  # untouched defaults stay


def test_a_recipe_changes_the_loops_defaults() -> None:
    declared = declare({"lr": 3e-3, "epochs": 4}, "r")
    assert declared["lr"] == 3e-3 and declared["epochs"] == 4
    assert declare({"lr": 1}, "r")["lr"] == 1.0  # an int default for a float param


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["lr"], "write name=value"),
        (["=3"], "write name=value"),
        (["lr=1", "lr=2"], "given twice"),
        (["nosuch=1"], "unknown param 'nosuch'"),
        (["epochs=2.5"], "epochs is an integer"),
        (["epochs=ten"], "epochs is an integer"),
        (["lr=fast"], "lr is a number"),
        (["lr=nan"], "finite"),
        (["lr=inf"], "finite"),
        (["lr=0"], "must be positive"),
        (["lr=-1"], "must be positive"),
        (["epochs=0"], "at least 1"),
        (["batch_size=-3"], "at least 1"),
        (["optimizer=lbfgs"], "choose one of adamw, adam, sgd"),
        (["amp=maybe"], "choose one of auto, on, off"),
        (["hidden=yes"], "hidden is an integer"),
        (["bn=perhaps"], "true or false"),
        (["1x=2"], "use letters"),
        (["a b=2"], "use letters"),
        (["keep_last=0"], "at least 1"),
        (["act=" + "x" * 1001], "at most 1000"),
    ],
)
def test_bad_overrides_are_refused_with_their_name(pairs: list[str], message: str) -> None:
    declared = declare({"hidden": 128, "bn": False, "act": "relu"}, "r")
    with pytest.raises(ValidationError, match=message):
        resolve(declared, parse_overrides(pairs))


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ([1, 2], "must be a dict"),
        ({"w": [1, 2]}, "use a bool, int, float or str"),
        ({"w": None}, "use a bool, int, float or str"),
        ({"bad name": 1}, "use letters"),
        ({"epochs": "many"}, "epochs is an integer"),
        ({"lr": float("nan")}, "finite"),
        ({"optimizer": "rmsprop"}, "choose one of"),
    ],
)
def test_bad_declarations_are_refused_naming_the_recipe(declared: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        declare(declared, "my.recipe")  # type: ignore[arg-type]
    assert "my.recipe" in str(caught.value)


def test_params_read_as_attributes_and_name_the_missing_one() -> None:
    params = resolve(declare(None, "r"), {})
    assert params.seed == 0
    with pytest.raises(AttributeError, match="no param 'nope'"):
        _ = params.nope
