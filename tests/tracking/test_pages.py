"""What the UI's runs table reads: pages (offset), counts, the keys runs hold, runs per
experiment, and where in a filter an error is; on every backend."""

from __future__ import annotations

import pytest

from hone.config import Workspace
from hone.errors import FilterError, ValidationError
from hone.tracking import queries
from hone.tracking.tracker import get_tracker
from tests.tracking.test_search import runs

__all__ = ["runs"]


def test_pages_follow_one_order_without_gaps_or_repeats(
    workspace: Workspace, runs: dict[str, str]
) -> None:
    db = get_tracker(workspace).db
    order = ["name desc"]
    whole = [r.name for r in queries.search_runs(db, order_by=order)]
    pages = [
        [r.name for r in queries.search_runs(db, order_by=order, max_results=4, offset=start)]
        for start in (0, 4, 8)
    ]
    assert pages == [whole[:4], whole[4:], []]
    assert queries.count_runs(db) == 6
    assert queries.count_runs(db, experiment="nlp", filter="metrics.acc > 0.5") == 1
    assert queries.count_runs(db, filter="name = 'nobody'") == 0


@pytest.mark.parametrize("offset", [-1, 1.5, True, "2", 2**62])
def test_bad_offsets_are_refused(workspace: Workspace, offset: object) -> None:
    db = get_tracker(workspace).db
    with pytest.raises(ValidationError, match="offset"):
        queries.search_runs(db, offset=offset)  # type: ignore[arg-type]


def test_keys_and_runs_per_experiment(workspace: Workspace, runs: dict[str, str]) -> None:
    db = get_tracker(workspace).db
    assert queries.run_keys(db, experiment="vision") == {
        "params": ["lr", "opt"],
        "metrics": ["acc", "loss"],
        "tags": ["team"],
    }
    every = queries.run_keys(db)
    assert every["metrics"] == ["acc", "loss", "val acc"]
    assert every["tags"] == ["odd key", "team"]
    assert queries.run_keys(db, experiment="nobody") == {"params": [], "metrics": [], "tags": []}
    counts = queries.runs_per_experiment(db)
    assert counts["vision"] == 3 and counts["nlp"] == 3


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("metrics.acc >", 13),
        ("metrics.acc > 0.9 garbage", 18),
        ("metrics.acc ~ 1", 12),
        ("accuracy > 0.9", 0),
        ("name = 'open", 7),
        ("(metrics.acc > 0.9", 18),
    ],
)
def test_filter_errors_know_their_position(workspace: Workspace, text: str, position: int) -> None:
    db = get_tracker(workspace).db
    with pytest.raises(FilterError) as caught:
        queries.search_runs(db, filter=text)
    assert caught.value.position == position
    assert f"position {position}" in str(caught.value) or "at the end" in str(caught.value)


def test_metric_columns_read_every_point_or_those_past_a_step(workspace: Workspace) -> None:
    import math

    import hone

    with hone.start_run("cols", name="c", workspace=workspace) as run:
        for step in range(5):
            run.log_metric("loss", math.nan if step == 2 else 1.0 / (step + 1), step=step)
    db = get_tracker(workspace).db
    found = queries.metric_columns(db, run.id, "loss")
    assert found.step == [0, 1, 2, 3, 4] and found.value[2] is None
    assert found.value[:2] == [1.0, 0.5] and len(found.time) == 5
    assert queries.metric_columns(db, run.id, "loss", after_step=2).step == [3, 4]
    assert queries.metric_columns(db, run.id, "loss", after_step=4).step == []
    history = queries.metric_history(db, run.id, "loss", after_step=1)
    assert [m.step for m in history] == [2, 3, 4] and math.isnan(history[0].value)
    with pytest.raises(ValidationError, match="after_step"):
        queries.metric_columns(db, run.id, "loss", after_step=2**63)
    with pytest.raises(ValidationError, match="after_step"):
        queries.metric_columns(db, run.id, "loss", after_step="1")  # type: ignore[arg-type]
