"""search_runs: the filter language against real stores, and its error messages."""

from __future__ import annotations

import pytest

import hone
from hone.config import Workspace
from hone.errors import FilterError, NotFoundError, UserError, ValidationError


@pytest.fixture
def runs(workspace: Workspace) -> dict[str, str]:
    """Six runs in two experiments; returns name -> id."""
    ids = {}
    specs = [
        ("a", "vision", {"lr": "0.01", "opt": "adam"}, {"team": "cv"}, {"acc": 0.95, "loss": 0.1}),
        ("b", "vision", {"lr": "0.1", "opt": "sgd"}, {"team": "cv"}, {"acc": 0.80, "loss": 0.5}),
        ("c", "vision", {"lr": "0.01", "opt": "sgd"}, {}, {"acc": 0.91}),
        ("d", "nlp", {"lr": "0.01", "opt": "adam"}, {"team": "nlp"}, {"acc": 0.99}),
        ("e", "nlp", {"lr": "0.001"}, {}, {"acc": float("nan")}),
        ("f", "nlp", {}, {"odd key": "x"}, {"val acc": 0.7}),
    ]
    for name, experiment, params, tags, metrics in specs:
        with hone.start_run(
            experiment, name=name, params=params, tags=tags, workspace=workspace
        ) as run:
            run.log_metric("acc", 0.0, step=0)  # an early value that the latest replaces
            for key, value in metrics.items():
                run.log_metric(key, value, step=5)
        ids[name] = run.id
    return ids


def _names(workspace: Workspace, **kwargs: object) -> list[str]:
    return sorted(r.name for r in hone.search_runs(workspace=workspace, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("metrics.acc > 0.9 and params.lr = '0.01'", ["a", "c", "d"]),
        ("metrics.acc > 0.9 and params.lr = 0.01", ["a", "c", "d"]),
        ("metrics.acc >= 0.95", ["a", "d"]),
        ("metrics.acc < 0.5", ["f"]),  # f logged acc only at step 0
        ("params.opt in ('sgd', 'adam') and not params.opt = 'adam'", ["b", "c"]),
        ("tags.team = 'cv' or tags.team = \"nlp\"", ["a", "b", "d"]),
        ("(tags.team = 'cv' or tags.team = 'nlp') and metrics.acc > 0.9", ["a", "d"]),
        ("metrics.loss is null", ["c", "d", "e", "f"]),
        ("metrics.loss is not null", ["a", "b"]),
        ("metrics.`val acc` > 0.5", ["f"]),
        ("tags.`odd key` = 'x'", ["f"]),
        ("name like 'a%' or name = 'e'", ["a", "e"]),
        ("experiment = 'nlp' and status = 'finished'", ["d", "e", "f"]),
        ("params.lr != '0.01'", ["b", "e"]),
        ("params.opt ilike 'ADAM'", ["a", "d"]),
        ("metrics.acc != 0.95", ["b", "c", "d", "f"]),  # NaN matches no comparison
    ],
)
def test_filters(
    workspace: Workspace, runs: dict[str, str], filter: str, expected: list[str]
) -> None:
    assert _names(workspace, filter=filter) == expected


def test_experiment_scope_and_ordering(workspace: Workspace, runs: dict[str, str]) -> None:
    found = hone.search_runs("vision", order_by=["metrics.acc desc"], workspace=workspace)
    assert [r.name for r in found] == ["a", "c", "b"]
    found = hone.search_runs(["vision", "nlp"], order_by=["metrics.loss asc"], workspace=workspace)
    assert [r.name for r in found][:2] == ["a", "b"]  # runs without loss come last
    found = hone.search_runs(
        order_by=["params.lr desc", "name"], max_results=2, workspace=workspace
    )
    assert [r.name for r in found] == ["b", "a"]
    assert [r.name for r in hone.search_runs(order_by=["name desc"], workspace=workspace)] == [
        "f",
        "e",
        "d",
        "c",
        "b",
        "a",
    ]


def test_results_carry_params_tags_and_latest_metrics(
    workspace: Workspace, runs: dict[str, str]
) -> None:
    (a,) = hone.search_runs(filter="name = 'a'", workspace=workspace)
    assert a.id == runs["a"] and a.params == {"lr": "0.01", "opt": "adam"}
    assert a.tags == {"team": "cv"} and a.metrics["acc"].value == 0.95


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ("metrics.acc >", "ends too early"),
        ("metrics.acc > 0.9 and", "ends too early"),
        ("accuracy > 0.9", "unknown field 'accuracy'"),
        ("metrics.acc > 'high'", "compare it with a number"),
        ("params.lr > 0.01", "are text"),
        ("metrics.acc like '9%'", "is a number"),
        ("status = 'done'", "not one of"),
        ("metrics.acc > 0.9 garbage", "expected 'and', 'or' or the end"),
        ("(metrics.acc > 0.9", r"expected \)"),
        ("metrics.acc ~ 1", "unexpected"),
        ("metrics.acc > 0.9; drop table runs", "unexpected"),
        ("metrics. > 1", "expected a key"),
    ],
)
def test_malformed_filters_say_what_is_wrong(
    workspace: Workspace, filter: str, message: str
) -> None:
    with pytest.raises(FilterError, match=message):
        hone.search_runs(filter=filter, workspace=workspace)


def test_bad_order_by_and_limits(workspace: Workspace) -> None:
    with pytest.raises(FilterError, match="expected FIELD"):
        hone.search_runs(order_by=["metrics.acc sideways"], workspace=workspace)
    with pytest.raises(ValidationError, match="max_results"):
        hone.search_runs(max_results=0, workspace=workspace)


def test_run_ids_resolve_by_unique_prefix(workspace: Workspace, runs: dict[str, str]) -> None:
    full = runs["a"]
    assert hone.get_run(full[:10], workspace=workspace).id == full
    with pytest.raises(NotFoundError, match="no run"):
        hone.get_run("0" * 32 if not full.startswith("0" * 32) else "f" * 32, workspace=workspace)
    with pytest.raises(ValidationError, match="not a run id"):
        hone.get_run("not-an-id", workspace=workspace)
    with pytest.raises(UserError, match="ambiguous"):
        _ambiguous(workspace, runs)


def _ambiguous(workspace: Workspace, runs: dict[str, str]) -> None:
    # Find a one-hex-digit prefix shared by two runs, or make one.
    firsts = [rid[0] for rid in runs.values()]
    shared = next((c for c in firsts if firsts.count(c) > 1), None)
    if shared is None:
        while True:
            with hone.start_run(workspace=workspace) as run:
                pass
            if run.id[0] in firsts:
                shared = run.id[0]
                break
    hone.get_run(shared, workspace=workspace)


def test_metric_history_of_an_unknown_key_names_the_known_ones(
    workspace: Workspace, runs: dict[str, str]
) -> None:
    with pytest.raises(NotFoundError, match="it has acc, loss"):
        hone.get_metric_history(runs["a"], "accuracy", workspace=workspace)


def test_like_statements_of_one_shape_bind_their_own_patterns(
    workspace: Workspace, runs: dict[str, str]
) -> None:
    """like compiles per backend through a construct of hone's own: a statement compiled
    once is reused from SQLAlchemy's cache, and must still bind each call's pattern."""
    for pattern, expected in (("a%", ["a"]), ("%", ["a", "b", "c", "d", "e", "f"]), ("b", ["b"])):
        assert _names(workspace, filter=f"name like '{pattern}'") == expected
        assert _names(workspace, filter=f"params.lr ilike '{pattern}'") == (
            ["a", "b", "c", "d", "e"] if pattern == "%" else []
        )
