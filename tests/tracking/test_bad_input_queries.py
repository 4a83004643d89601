"""Bad input to the read API: each answers with one kind of error and a message that names
what was wrong, on every backend, and reads nothing it should not. Add cases as found."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hone
import hone.tracking.filter as filter_module
from hone.cli.main import main
from hone.cli.state import state
from hone.config import Workspace
from hone.errors import FilterError, HoneError, NotFoundError, ValidationError
from hone.tracking.filter import (
    MAX_CLAUSES,
    MAX_DEPTH,
    MAX_FILTER_CHARS,
    MAX_ORDER_BY,
    MAX_PATTERN_CHARS,
    MAX_VALUES,
)
from hone.tracking.queries import MAX_EXPERIMENTS, MAX_RESULTS

Call = Callable[[Workspace, str], Any]


def _search(**kwargs: Any) -> Call:
    return lambda ws, run_id: hone.search_runs(workspace=ws, **kwargs)


def _filter(text: str) -> Call:
    return _search(filter=text)


def _get_run(run_id: Any) -> Call:
    return lambda ws, _: hone.get_run(run_id, workspace=ws)


def _history(key: Any) -> Call:
    return lambda ws, run_id: hone.get_metric_history(run_id, key, workspace=ws)


# (what is tried, the call, the error class, a fragment of its message)
CASES: list[tuple[str, Call, type[HoneError], str]] = [
    # run ids
    ("get_run(None)", _get_run(None), ValidationError, "run_id must be a string"),
    ("get_run(5)", _get_run(5), ValidationError, "got int 5"),
    ("get_run(b'ab')", _get_run(b"ab"), ValidationError, "got bytes"),
    ("get_run('')", _get_run(""), ValidationError, "is not a run id"),
    ("get_run(percent)", _get_run("ab%"), ValidationError, "is not a run id"),
    ("get_run(underscore)", _get_run("ab_"), ValidationError, "is not a run id"),
    ("get_run(surrogate)", _get_run("ab\ud800"), ValidationError, "is not a run id"),
    ("get_run(NUL)", _get_run("ab\x00"), ValidationError, "is not a run id"),
    ("get_run(33 hex)", _get_run("a" * 33), ValidationError, "32 hex digits"),
    ("get_run(1 MB)", _get_run("x" * 1_000_000), ValidationError, "…"),
    ("get_run(unknown)", _get_run("0" * 31 + "1"), NotFoundError, "no run"),
    # metric history
    ("history(key=5)", _history(5), ValidationError, "metric key must be a string"),
    ("history(key=None)", _history(None), ValidationError, "metric key must be a string"),
    ("history(key='')", _history(""), ValidationError, "empty"),
    ("history(key=NUL)", _history("a\x00b"), ValidationError, "characters hone does not allow"),
    ("history(surrogate)", _history("a\ud800"), ValidationError, "characters hone does not"),
    ("history(key 300)", _history("k" * 300), ValidationError, "the limit is 250"),
    (
        "history(run None)",
        lambda ws, _: hone.get_metric_history(None, "acc", workspace=ws),  # type: ignore[arg-type]
        ValidationError,
        "run_id must be a string",
    ),
    # max_results
    ("max_results='10'", _search(max_results="10"), ValidationError, "max_results must be a whole"),
    ("max_results=True", _search(max_results=True), ValidationError, "got bool"),
    ("max_results=1.5", _search(max_results=1.5), ValidationError, "got float"),
    ("max_results=None", _search(max_results=None), ValidationError, "got NoneType"),
    ("max_results=0", _search(max_results=0), ValidationError, "between 1 and 50,000"),
    ("max_results=-1", _search(max_results=-1), ValidationError, "got -1"),
    ("max_results=cap+1", _search(max_results=MAX_RESULTS + 1), ValidationError, "50,000"),
    ("max_results=10**30", _search(max_results=10**30), ValidationError, "between 1 and"),
    # experiment
    ("experiment=5", _search(experiment=5), ValidationError, "experiment must be a name"),
    ("experiment=b'x'", _search(experiment=b"x"), ValidationError, "got bytes"),
    ("experiment={'a'}", _search(experiment={"a"}), ValidationError, "got set"),
    ("experiment=[5]", _search(experiment=[5]), ValidationError, "names must be strings"),
    ("experiment NUL", _search(experiment=["a\x00"]), ValidationError, "not valid text"),
    ("experiment surrogate", _search(experiment="\udcff"), ValidationError, "not valid text"),
    (
        "experiment too many",
        _search(experiment=["e"] * (MAX_EXPERIMENTS + 1)),
        ValidationError,
        "the limit is 1,000",
    ),
    # filter and order_by from Python
    ("filter=5", _search(filter=5), FilterError, "filter must be a string"),
    ("filter=b'x'", _search(filter=b"name = 'a'"), FilterError, "got bytes"),
    ("filter=['a']", _search(filter=["name = 'a'"]), FilterError, "got list"),
    ("order_by=5", _search(order_by=5), FilterError, "order_by must be a list"),
    ("order_by=b'x'", _search(order_by=b"name"), FilterError, "got bytes"),
    ("order_by=[5]", _search(order_by=[5]), FilterError, "an order_by clause must be a string"),
    ("order_by=['']", _search(order_by=[""]), FilterError, "is empty"),
    (
        "order_by comma",
        _search(order_by="metrics.acc desc, name"),
        FilterError,
        "give each clause as its own list item",
    ),
    ("order_by sideways", _search(order_by=["name sideways"]), FilterError, "FIELD [asc|desc]"),
    ("order_by datasets", _search(order_by=["datasets.name"]), FilterError, "by their inputs"),
    (
        "order_by too many",
        _search(order_by=["name"] * (MAX_ORDER_BY + 1)),
        FilterError,
        "the limit is 20",
    ),
    ("order_by NUL", _search(order_by=["params.`a\x00`"]), FilterError, "NUL byte"),
    # filters that used to crash or blame the store
    (
        "1,000 parentheses",
        _filter("(" * 1000 + "name = 'a'" + ")" * 1000),
        FilterError,
        f"deeper than {MAX_DEPTH} levels",
    ),
    (
        "depth bound + 1",
        _filter("(" * (MAX_DEPTH + 1) + "name = 'a'" + ")" * (MAX_DEPTH + 1)),
        FilterError,
        "nest deeper",
    ),
    ("surrogate in a value", _filter("params.s = '\ud800'"), FilterError, "lone surrogate"),
    ("surrogate in a key", _filter("params.`a\udfff` = 'x'"), FilterError, "position 9"),
    ("NUL in a value", _filter("params.s = 'a\x00'"), FilterError, "'\\x00' at position 13"),
    (
        "5,000-term or",
        _filter(" or ".join(f"name = 'v{i}'" for i in range(5000))),
        FilterError,
        f"more than {MAX_CLAUSES} comparisons",
    ),
    (
        "60 kB like pattern",
        _filter("name like '" + "%a" * 30_000 + "'"),
        FilterError,
        f"over the limit of {MAX_PATTERN_CHARS:,}",
    ),
    (
        "too many values",
        _filter("name in (" + ", ".join(["'v'"] * (MAX_VALUES + 1)) + ")"),
        FilterError,
        "more than 5,000 values",
    ),
    (
        "200 kB filter",
        _filter("name = '" + "x" * 200_000 + "'"),
        FilterError,
        f"the limit is {MAX_FILTER_CHARS:,}",
    ),
    # the language itself
    ("unclosed string", _filter("name = 'abc"), FilterError, "never closed"),
    ("lone backslash", _filter("name like 'abc\\\\'"), FilterError, "lone backslash"),
    ("milliseconds", _filter("start_time > 1700000000000"), FilterError, "milliseconds"),
    ("artifact_uri", _filter("attributes.artifact_uri = 'x'"), FilterError, "artifact_uri"),
    (
        "lifecycle_stage",
        _filter("attr.lifecycle_stage = 'active'"),
        FilterError,
        "does not soft-delete",
    ),
    ("experiment_id", _filter("attributes.experiment_id = '1'"), FilterError, "experiment = "),
    ("datasets.foo", _filter("datasets.foo = 'x'"), FilterError, "unknown dataset field"),
    ("datasets number", _filter("datasets.name > 1"), FilterError, "are text"),
    ("status scheduled", _filter("status = 'SCHEDULED'"), FilterError, "not one of"),
    ("time as text", _filter("end_time = 'now'"), FilterError, "compare it with a number"),
    ("empty in", _filter("name in ()"), FilterError, "expected a number or a quoted string"),
    ("not before an op", _filter("name not = 'a'"), FilterError, "expected a comparison"),
    ("keyword as field", _filter("and = 1"), FilterError, "expected a field"),
    (
        "long filter's message",
        _filter("name = 'x' " + "garbage " * 10_000),
        FilterError,
        "(80,011 characters)",
    ),
]


@pytest.fixture
def recorded(workspace: Workspace) -> str:
    with hone.start_run("bad-input", name="a", params={"s": "a"}, workspace=workspace) as run:
        run.log_metric("acc", 0.5)
    return run.id


@pytest.mark.parametrize(
    ("call", "error", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_answers_with_one_clean_error(
    workspace: Workspace, recorded: str, call: Call, error: type[HoneError], fragment: str
) -> None:
    with pytest.raises(HoneError) as caught:
        call(workspace, recorded)
    assert type(caught.value) is error
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message and len(message) < 400
    # nothing was written or damaged: the run reads back as it was
    assert hone.get_run(recorded, workspace=workspace).params == {"s": "a"}


def test_order_by_takes_one_clause_as_a_string(workspace: Workspace, recorded: str) -> None:
    with hone.start_run("bad-input", name="b", workspace=workspace) as run:
        run.log_metric("acc", 0.9)
    found = hone.search_runs(order_by="metrics.acc desc", workspace=workspace)
    assert [r.name for r in found] == ["b", "a"]
    found = hone.search_runs(order_by=("metrics.acc",), workspace=workspace)
    assert [r.name for r in found] == ["a", "b"]


def test_numpy_integers_are_whole_numbers(workspace: Workspace, recorded: str) -> None:
    import numpy

    one = numpy.int64(1)
    assert len(hone.search_runs(max_results=one, workspace=workspace)) == 1  # type: ignore[arg-type]


def test_a_query_the_store_refuses_is_a_filter_error(
    workspace: Workspace, recorded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With hone's bounds lifted, SQLite refuses a 1,500-term or (its expression tree is at
    most 1,000 deep): the refusal must come back as bad input, not as an outage."""
    monkeypatch.setattr(filter_module, "MAX_CLAUSES", 10_000)
    chain = " or ".join([f"name = 'v{i}'" for i in range(1499)] + ["name = 'a'"])
    if workspace.store_uri.startswith("sqlite"):
        with pytest.raises(FilterError, match=r"store refused this search.*too large"):
            hone.search_runs(filter=chain, workspace=workspace)
    else:  # PostgreSQL takes it; hone's bounds are for the strictest backend
        assert [r.name for r in hone.search_runs(filter=chain, workspace=workspace)] == ["a"]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    state.synced = False
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-n", "100000000000000000000"], "max_results must be between 1 and 50,000"),
        (["-n", "-1"], "max_results must be between 1 and 50,000, got -1"),
        (["-n", "0"], "got 0"),
        (["-f", "(" * 1000 + "name = 'a'" + ")" * 1000], "nest deeper than 50"),
        (["-f", "not " * 2000], "ends too early"),
        (["-f", "name like '" + "%" * 60_000 + "'"], "like pattern of 60,000 characters"),
        (["-f", "params.s = 'a\udcff'"], "lone surrogate"),
        (["-o", "metrics.acc desc, name"], "own list item"),
        (["-f", "attributes.artifact_uri like '%x%'"], "artifact_uri"),
    ],
    ids=[
        "n-huge",
        "n-negative",
        "n-zero",
        "parens",
        "nots",
        "pattern",
        "surrogate",
        "comma",
        "artifact_uri",
    ],
)
def test_cli_answers_bad_input_with_exit_2_and_one_line(
    workspace: Workspace,
    recorded: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    monkeypatch.setenv("HONE_HOME", str(workspace.home))
    code, output = _cli(capsys, "runs", "list", *args)
    assert code == 2, output
    assert fragment in output
    assert output.strip().count("\n") == 0 and "Traceback" not in output
