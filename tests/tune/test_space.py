"""Search spaces: both forms suggest through Optuna; every malformed one is refused with a
message naming the param and what was wrong; the grid sampler takes only finite spaces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest

from hone.errors import ValidationError
from hone.tune.choices import make_pruner, make_sampler
from hone.tune.space import parse_space, space_from_text

SPACE = {
    "lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "width": {"low": 16, "high": 64, "step": 16},
    "dropout": {"low": 0.0, "high": 0.5},
    "act": ["relu", "gelu"],
}


def _trial() -> optuna.Trial:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return study.ask()


def test_a_declarative_space_suggests_values_of_each_kind_within_range() -> None:
    space = parse_space(SPACE, "recipe r")
    for _ in range(20):
        chosen = space.suggest(_trial())
        assert 1e-4 <= chosen["lr"] <= 1e-1
        assert chosen["width"] in (16, 32, 48, 64) and isinstance(chosen["width"], int)
        assert 0.0 <= chosen["dropout"] <= 0.5 and isinstance(chosen["dropout"], float)
        assert chosen["act"] in ("relu", "gelu")
    assert space.describe()["width"] == {"low": 16, "high": 64, "step": 16}


def test_a_define_by_run_function_is_called_with_the_trial() -> None:
    def search(trial: optuna.Trial) -> dict[str, Any]:
        return {"lr": trial.suggest_float("lr", 0.1, 0.2)}

    space = parse_space(search, "recipe r")
    trial = _trial()
    assert 0.1 <= space.suggest(trial)["lr"] <= 0.2
    assert trial.params.keys() == {"lr"}
    with pytest.raises(ValidationError, match="grid needs a declarative search space"):
        space.grid()


def test_the_fingerprint_tells_spaces_apart() -> None:
    assert parse_space(SPACE, "a").fingerprint == parse_space(dict(SPACE), "b").fingerprint
    other = {**SPACE, "act": ["relu"]}
    assert parse_space(other, "a").fingerprint != parse_space(SPACE, "a").fingerprint


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (None, "declares no search space"),
        ({}, "is empty"),
        ([1, 2], "must be a dict of ranges or a function"),
        ({"lr": []}, "lr: an empty list of choices"),
        ({"lr": [1, 1]}, "lr: the choices repeat a value"),
        ({"lr": [[1]]}, r"lr: choice \[1\] is not a number"),
        ({"lr": [float("nan")]}, "lr: choice nan is not a number"),
        ({"lr": 0.1}, "lr: give a list of choices or a range"),
        ({"lr": {"low": 1}}, "lr: a range has low and high"),
        ({"lr": {"low": 1, "high": 2, "scale": "log"}}, "unknown key"),
        ({"lr": {"low": "a", "high": 2}}, "lr: low must be a number"),
        ({"lr": {"low": True, "high": 2}}, "lr: low must be a number"),
        ({"lr": {"low": 0, "high": float("inf")}}, "lr: high must be finite"),
        ({"lr": {"low": 2, "high": 1}}, "lr: low 2 is above high 1"),
        ({"lr": {"low": 0, "high": 1, "log": True}}, "lr: a log range must start above 0"),
        ({"lr": {"low": 1, "high": 9, "log": True, "step": 2}}, "lr: a range is log or stepped"),
        ({"lr": {"low": 1, "high": 9, "step": 0}}, "lr: step must be above 0"),
        ({"lr": {"low": 1, "high": 9, "log": "yes"}}, "lr: log must be true or false"),
        ({"": [1]}, "is not a param name"),
    ],
)
def test_a_malformed_space_is_refused_naming_what_is_wrong(given: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_space(given, "recipe r")


def test_the_grid_enumerates_choices_and_stepped_ranges() -> None:
    space = parse_space(
        {
            "a": [1, 2],
            "b": {"low": 0, "high": 4, "step": 2},
            "c": {"low": 0.0, "high": 1.0, "step": 0.5},
        },
        "r",
    )
    assert space.grid() == {"a": [1, 2], "b": [0, 2, 4], "c": [0.0, 0.5, 1.0]}
    assert space.grid_size() == 18
    sampler = make_sampler("grid", space, seed=0)
    assert isinstance(sampler, optuna.samplers.GridSampler)


@pytest.mark.parametrize(
    ("dim", "kind"),
    [
        ({"low": 0.1, "high": 0.5}, "a continuous range"),
        ({"low": 1, "high": 8, "log": True}, "a log range"),
    ],
)
def test_the_grid_sampler_refuses_a_continuous_range_naming_it(
    dim: dict[str, Any], kind: str
) -> None:
    space = parse_space({"a": [1, 2], "lr": dim}, "r")
    with pytest.raises(ValidationError, match=f"cannot search lr: it is {kind}"):
        make_sampler("grid", space, seed=0)


def test_a_grid_too_large_is_refused_before_a_value_is_listed() -> None:
    space = parse_space({"a": {"low": 0, "high": 999}, "b": {"low": 0, "high": 999}}, "r")
    with pytest.raises(ValidationError, match="1,000,000 points"):
        space.grid()
    huge = parse_space({"hidden": {"low": 1, "high": 10**11}}, "r")  # no 10^11-long list
    with pytest.raises(ValidationError, match="100,000,000,000 points"):
        huge.grid()


def test_a_step_too_small_for_its_range_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"step 1e-300 is too small for 0\.1 to 0\.2"):
        parse_space({"lr": {"low": 0.1, "high": 0.2, "step": 1e-300}}, "r")


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes"])
def test_each_sampler_and_pruner_is_built(name: str) -> None:
    space = parse_space(SPACE, "r")
    assert isinstance(make_sampler(name, space, seed=1), optuna.samplers.BaseSampler)
    for pruner in ("median", "asha", "hyperband", "none"):
        assert isinstance(make_pruner(pruner, 5), optuna.pruners.BasePruner)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_sampler("bayes", parse_space(SPACE, "r"), None), "--sampler 'bayes'"),
        (lambda: make_pruner("early", 5), "--pruner 'early': choose one of median"),
    ],
)
def test_an_unknown_sampler_or_pruner_names_the_choices(call: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        call()


def test_space_text_is_json_or_a_json_file(tmp_path: Path) -> None:
    assert space_from_text('{"lr": [0.1, 0.2]}').names == ("lr",)
    path = tmp_path / "space.json"
    path.write_text(json.dumps(SPACE))
    assert set(space_from_text(str(path)).names) == set(SPACE)
    with pytest.raises(ValidationError, match="not valid JSON: Expecting"):
        space_from_text('{"lr": [0.1,')
    with pytest.raises(ValidationError, match="not a readable file"):
        space_from_text(str(tmp_path / "missing.json"))
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(ValidationError, match="not a readable file"):
        space_from_text(str(path))


def test_the_median_pruner_never_judges_the_first_epoch() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", pruner=make_pruner("median", 5))
    for value in (0.9, 0.8, 0.85):
        trial = study.ask()
        for epoch in (1, 2, 3):
            trial.report(value, epoch)
        study.tell(trial, value)
    bad = study.ask()
    bad.report(0.1, 1)
    assert not bad.should_prune()  # epoch 1: too early to tell
    bad.report(0.1, 2)
    assert bad.should_prune()


def test_a_number_too_large_for_a_float_is_refused() -> None:
    with pytest.raises(ValidationError, match="high must be finite"):
        parse_space({"x": {"low": 0, "high": 10**400}}, "--space")


def test_a_partial_or_callable_objective_is_named_the_same_in_every_process() -> None:
    import functools

    from hone.tune.space import callable_name

    def objective(trial: optuna.Trial, scale: float) -> float:
        return scale

    class Objective:
        def __call__(self, trial: optuna.Trial) -> float:
            return 0.0

    name = callable_name(functools.partial(objective, scale=2.0))
    assert "0x" not in name and name.endswith("objective)")
    assert callable_name(Objective()).endswith("Objective") and "0x" not in callable_name(
        Objective()
    )
    fingerprint = parse_space(functools.partial(objective, scale=2.0), "r").fingerprint
    assert fingerprint == parse_space(functools.partial(objective, scale=2.0), "r").fingerprint
    assert fingerprint != parse_space(functools.partial(objective, scale=3.0), "r").fingerprint
    assert parse_space(Objective(), "r").fingerprint == parse_space(Objective(), "r").fingerprint
