"""The promotion gate language: what parses, what each clause means, and errors that give
the position and what was expected."""

from __future__ import annotations

import pytest

from hone.errors import FilterError
from hone.models.evaluation import CLASSIFICATION, REGRESSION
from hone.models.gate import parse_gate

CANDIDATE = {"accuracy": 0.95, "macro_f1": 0.9, "log_loss": 0.2}
CHAMPION = {"accuracy": 0.94, "macro_f1": 0.93, "log_loss": 0.3}


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("accuracy >= champion + 0.01", True),  # 0.95 >= 0.94 + 0.01: exact in decimals
        ("accuracy > champion + 0.01", False),
        ("accuracy>=champion+0.02", False),
        ("log_loss < champion", True),
        ("log_loss < champion and accuracy >= 0.95", True),
        ("log_loss < champion and macro_f1 >= champion", False),
        ("macro_f1 >= champion.macro_f1 - 0.05", True),
        ("accuracy >= champion.macro_f1", True),
        ("accuracy >= (champion - 0.01) * 1.03", False),
        ("accuracy <= 1 and accuracy >= 0", True),
        ("accuracy >= -champion", True),
        ("accuracy AND", None),
    ],
)
def test_gates_evaluate_each_clause(text: str, holds: bool | None) -> None:
    if holds is None:
        with pytest.raises(FilterError):
            parse_gate(text, CLASSIFICATION)
        return
    gate = parse_gate(text, CLASSIFICATION)
    ok, said = gate.check(CANDIDATE, {"champion": CHAMPION})
    assert ok is holds
    assert len(said) == len(gate.clauses)
    assert all(("holds" in s) or ("fails" in s) for s in said)


def test_an_alias_that_points_nowhere_makes_its_clauses_hold_and_says_so() -> None:
    gate = parse_gate("accuracy >= champion + 0.01 and accuracy >= 0.99", CLASSIFICATION)
    assert gate.aliases() == {"champion"}
    ok, said = gate.check(CANDIDATE, {"champion": None})
    assert not ok  # the absolute clause still fails
    assert "champion not set: nothing to beat" in said[0] and "fails" in said[1]


def test_a_nan_metric_never_passes() -> None:
    gate = parse_gate("accuracy >= champion", CLASSIFICATION)
    ok, _ = gate.check({"accuracy": float("nan")}, {"champion": {"accuracy": 0.5}})
    assert not ok


def test_regression_gates_use_regression_metrics() -> None:
    gate = parse_gate("rmse <= champion * 0.9 and r2 >= 0.5", REGRESSION)
    ok, _ = gate.check({"rmse": 1.0, "r2": 0.6}, {"champion": {"rmse": 1.2, "r2": 0.4}})
    assert ok
    with pytest.raises(FilterError, match=r"names none of the candidate's metrics \(mse, rmse"):
        parse_gate("accuracy >= champion", REGRESSION)
    with pytest.raises(FilterError, match="accuracy measures the other kind of model"):
        parse_gate("accuracy >= champion", REGRESSION, CLASSIFICATION)
    with pytest.raises(FilterError, match="did you mean accuracy"):
        parse_gate("Accuracy >= 0.9", CLASSIFICATION)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "--gate is empty"),
        ("   ", "--gate is empty"),
        ("accuracy >= ", "expected a number, a metric or an alias at the end"),
        ("accuracy >= champion +", "at the end"),
        ("accuracy = champion", "'=' is not a gate comparison"),
        ("accuracy == champion", "'==' is not a gate comparison"),
        (
            "accuracy champion",
            "expected a comparison (<, <=, >, >=), found 'champion' at position 9",
        ),
        ("acuracy >= champion", "names none of the candidate's metrics"),
        ("accuracy >= " + "-" * 30 + "1", "nest deeper than 20"),
        ("accuracy >= " + "-" * 987 + "1", "nest deeper than 20"),
        ("macro_f1 > accuracy", "one metric a clause"),
        ("accuracy >= champion or x", "expected 'and' or the end, found 'or' at position 21"),
        ("accuracy >= champion.", "expected a metric after 'champion.'"),
        ("accuracy >= champion.acc", "expected a metric after 'champion.'"),
        ("accuracy >= 0.9 $", "unexpected '$' at position 16"),
        ("accuracy >= 1e999", "is not finite at position 12"),
        ("accuracy >= (0.9", "expected ')' at the end"),
        ("(" * 30 + "accuracy" + ")" * 30 + " > 0", "deeper than 20"),
        ("accuracy >= " + "1+" * 600 + "1", "at most 1,000"),
        ("not accuracy >= 0", "'and' only"),
    ],
)
def test_gates_that_do_not_parse_say_where_and_what_was_expected(text: str, says: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_gate(text, CLASSIFICATION)
    assert says in str(info.value)


def test_a_gate_must_be_text() -> None:
    with pytest.raises(FilterError, match="must be text"):
        parse_gate(0.5, CLASSIFICATION)
