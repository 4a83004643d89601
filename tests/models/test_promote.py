"""Promotion through a gate: both versions evaluated on the same rows, the alias moved only
when the gate holds, the evaluation recorded as a run either way and cited by the audit
entry; two promotions at once: exactly one wins, the other is told. On both backends."""

from __future__ import annotations

import itertools
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

import hone.models
from hone.config import Workspace
from hone.errors import ConflictError, FilterError, NotFoundError, UserError, ValidationError
from hone.models import promotion
from hone.models.evaluation import score
from hone.registry import alias_history, aliases_of, move_alias
from hone.tracking.queries import get_run
from tests.models.conftest import Trained, train_digits
from tests.models.helpers import stores

pytestmark = pytest.mark.slow


@pytest.fixture
def pair(trained: Trained) -> tuple[Trained, str]:
    """A fresh model of two versions (weak @1 is champion, strong @2), named per test."""
    name = f"p{len(hone.models.models(workspace=trained.ws))}"
    hone.models.register(name, run=trained.weak, workspace=trained.ws)
    hone.models.register(name, run=trained.strong, workspace=trained.ws)
    hone.models.alias(f"{name}@1", "champion", why="the first", workspace=trained.ws)
    return trained, name


def _on(trained: Trained, split: str = "validation") -> str:
    return f"digits@{trained.raw.id}:{split}"


def test_a_passing_gate_moves_the_alias_and_the_audit_cites_the_run(
    pair: tuple[Trained, str],
) -> None:
    trained, name = pair
    ws = trained.ws
    db, _ = stores(ws)
    result = hone.models.promote(
        f"{name}@2",
        "champion",
        "accuracy >= champion + 0.01",
        _on(trained),
        why="retrained",
        workspace=ws,
    )
    assert result.passed and result.moved and result.previous == 1
    assert aliases_of(db, name) == {"champion": 2}
    candidate, champion = result.evaluations["candidate"], result.evaluations["champion"]
    assert candidate.rows == champion.rows == trained.raw.splits["validation"]
    assert candidate.metrics["accuracy"] >= champion.metrics["accuracy"] + 0.01
    last = alias_history(db, name)[-1]
    assert (last.from_version, last.to_version, last.run_id) == (1, 2, result.run_id)
    assert last.why is not None and last.why.startswith("retrained (gate 'accuracy >= champion")
    run = get_run(db, result.run_id)
    assert run.status.value == "finished" and run.experiment == promotion.EXPERIMENT
    assert run.params["candidate"] == f"{name}@2" and run.params["champion.version"] == "1"
    assert run.tags["hone.gate"] == "passed" and run.tags["hone.promotion"] == "moved"
    assert run.metrics["candidate/accuracy"].value == pytest.approx(candidate.metrics["accuracy"])
    assert run.metrics["champion/accuracy"].value == pytest.approx(champion.metrics["accuracy"])
    assert [(i.version_id, i.split) for i in run.inputs] == [(trained.raw.id, "validation")]


def test_a_failing_gate_leaves_the_alias_and_is_recorded(pair: tuple[Trained, str]) -> None:
    trained, name = pair
    ws = trained.ws
    db, _ = stores(ws)
    before = alias_history(db, name)
    result = hone.models.promote(
        f"{name}@2", "champion", "accuracy >= champion + 2", _on(trained, "test"), workspace=ws
    )
    assert not result.passed and not result.moved
    assert aliases_of(db, name) == {"champion": 1}
    assert alias_history(db, name) == before
    run = get_run(db, result.run_id)
    assert run.tags["hone.gate"] == "failed" and run.tags["hone.promotion"] == "held"
    assert "fails" in run.tags["hone.gate.account"]


def test_the_first_promotion_has_nothing_to_beat(trained: Trained) -> None:
    ws = trained.ws
    hone.models.register("first", run=trained.weak, workspace=ws)
    result = hone.models.promote(
        "first@1", "champion", "accuracy >= champion + 0.01", _on(trained), workspace=ws
    )
    assert result.moved and result.previous is None
    assert "champion not set: nothing to beat" in result.account[0]


def test_an_alias_moved_while_the_evaluation_ran_is_not_overwritten(
    pair: tuple[Trained, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trained, name = pair
    ws = trained.ws
    db, _ = stores(ws)
    hone.models.register(name, run=trained.strong, workspace=ws)  # @3
    evaluate = score
    calls: list[int] = []

    def racing(*args: Any) -> Any:
        if not calls:  # another promotion moves the alias meanwhile
            move_alias(db, name, "champion", 3, why="the other process")
        calls.append(1)
        return evaluate(*args)

    monkeypatch.setattr(promotion, "score", racing)
    with pytest.raises(
        ConflictError, match=r"another process moved an alias it depends on: .*@champion moved"
    ):
        hone.models.promote(
            f"{name}@2", "champion", "accuracy >= champion", _on(trained), workspace=ws
        )
    assert aliases_of(db, name) == {"champion": 3}
    assert [e.to_version for e in alias_history(db, name)] == [1, 3]
    (run,) = [
        r
        for r in hone.search_runs(promotion.EXPERIMENT, workspace=ws)
        if r.params.get("candidate") == f"{name}@2"
    ]
    assert run.tags["hone.gate"] == "passed" and run.tags["hone.promotion"] == "lost"


def _promote(home: str, ref: str, out: Any) -> None:
    try:
        result = hone.models.promote(
            ref, "champion", "accuracy >= 0", out.get("on"), workspace=home
        )
        out["result"] = ("moved" if result.moved else "held", result.previous)
    except ConflictError as exc:
        out["result"] = ("told", str(exc))


def _race(home: str, ref: str, on: str, barrier: Any, queue: Any) -> None:
    barrier.wait(60)
    box: dict[str, Any] = {"on": on}
    _promote(home, ref, box)
    queue.put((ref, box["result"]))


def _raced(ws: Workspace, name: str, on: str) -> list[tuple[str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(str(ws.home), f"{name}@{n}", on, barrier, queue))
        for n in (1, 2)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return results


def test_two_promotions_at_once_end_with_one_consistent_history(trained: Trained) -> None:
    ws = trained.ws
    db, _ = stores(ws)
    name = "race"
    hone.models.register(name, run=trained.weak, workspace=ws)
    hone.models.register(name, run=trained.strong, workspace=ws)
    results = _raced(ws, name, _on(trained))
    outcomes = sorted(r[1][0] for r in results)
    # Either both read "unset" and one was told, or the second saw the first's move.
    assert outcomes in (["moved", "told"], ["moved", "moved"])
    history = alias_history(db, name)
    assert history[0].from_version is None
    for before, after in itertools.pairwise(history):
        assert after.from_version == before.to_version  # no move was lost or overwritten
    assert len(history) == outcomes.count("moved")
    assert aliases_of(db, name)["champion"] == history[-1].to_version


@pytest.mark.parametrize(
    ("args", "error", "says"),
    [
        (("zz@1", "champion", "accuracy >= 0"), NotFoundError, "no model 'zz'"),
        (("{n}@9", "champion", "accuracy >= 0"), NotFoundError, "no version 9"),
        (("{n}@2", "latest", "accuracy >= 0"), ValidationError, "alias 'latest' is taken"),
        (("{n}@2", "1st", "accuracy >= 0"), ValidationError, "alias '1st'"),
        (("{n}@2", "champion", "accuracy >>= 0"), FilterError, "position"),
        (("{n}@2", "champion", "rmse <= champion"), FilterError, "rmse measures the other kind"),
        (("{n}@2", "champion", "accuracy > chmapion"), FilterError, "nor an alias of"),
        (("{n}@2", "champion", "accuracy > nan"), FilterError, "'nan': neither a metric"),
        (("{n}@2", "champion", "accuracy > Champion"), FilterError, "its aliases: champion"),
    ],
)
def test_bad_promotions_are_refused_before_any_run(
    pair: tuple[Trained, str], args: tuple[str, str, str], error: type[Exception], says: str
) -> None:
    trained, name = pair
    ws = trained.ws
    before = len(hone.search_runs(promotion.EXPERIMENT, workspace=ws))
    ref, to, gate = args
    with pytest.raises(error, match=says):
        hone.models.promote(ref.format(n=name), to, gate, _on(trained), workspace=ws)
    assert len(hone.search_runs(promotion.EXPERIMENT, workspace=ws)) == before
    db, _ = stores(ws)
    assert aliases_of(db, name) == {"champion": 1}


@pytest.mark.parametrize(
    ("on", "says"),
    [
        ("nope@latest", "no dataset 'nope'"),
        ("digits@latest:nope", "no split 'nope'"),
        ("digits@latest:", "nothing after ':'"),
        ("", r"NAME@VERSION\[:SPLIT\]"),
    ],
)
def test_bad_evaluation_data_is_refused(pair: tuple[Trained, str], on: str, says: str) -> None:
    trained, name = pair
    with pytest.raises((UserError, NotFoundError, ValidationError), match=says):
        hone.models.promote(f"{name}@2", "champion", "accuracy >= 0", on, workspace=trained.ws)


@pytest.mark.postgres
def test_the_whole_registry_works_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from hone.store.engine import parse_store_url
    from hone.store.schema import metadata

    engine = create_engine(parse_store_url(postgres_url))
    with engine.begin() as conn:
        conn.execute(
            text(f"TRUNCATE {', '.join(t.name for t in reversed(metadata.sorted_tables))}")
        )
    engine.dispose()
    trained = train_digits(tmp_path / "ws", store_uri=postgres_url)
    ws = trained.ws
    db, _ = stores(ws)
    assert db.backend == "postgresql"
    hone.models.register("pg", run=trained.weak, formats="onnx,safetensors", workspace=ws)
    hone.models.register("pg", run=trained.strong, workspace=ws)
    hone.models.alias("pg@1", "champion", workspace=ws)
    result = hone.models.promote(
        "pg@2", "champion", "accuracy >= champion", _on(trained), workspace=ws
    )
    assert result.moved and aliases_of(db, "pg") == {"champion": 2}
    predictor = hone.models.load("pg@champion", workspace=ws)
    raw, _ = trained.raw.to_numpy("test")
    assert predictor.predict(raw).labels.shape == (len(raw),)
    # Two promotions at once on PostgreSQL: one consistent history.
    hone.models.alias("pg@champion", "champion", remove=True, workspace=ws)
    results = _raced(ws, "pg", _on(trained))
    assert sorted(r[1][0] for r in results) in (["moved", "told"], ["moved", "moved"])
    history = alias_history(db, "pg")
    for before, after in itertools.pairwise(history):
        assert after.from_version == before.to_version
