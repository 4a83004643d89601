"""The feedback loop: harvest labeled predictions into a new dataset version, retrain a
challenger, promote it through the gate; on a trained digits workspace with real servers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

import hone.data
import hone.models
from hone.config import Workspace
from hone.errors import ConflictError, FilterError, NotFoundError, ValidationError
from hone.export.failures import ExportError
from hone.loop import run_loop
from hone.loop.cycle import champion_base
from hone.loop.lease import Lease
from hone.models.workspace import opened
from hone.predictions import (
    Answered,
    FeedbackItem,
    Recorder,
    count_new_labels,
    give_feedback_many,
    harvest,
)
from hone.store.schema import loop_leases, prediction_harvests, runs, tags
from hone.tracking.tracker import close_trackers
from tests.serve.conftest import Served, make_served, start_server


@pytest.fixture
def fresh_served(tmp_path: Path) -> Iterator[Served]:
    """A workspace of its own (the loop changes aliases and data): champion is digits@2,
    the weak one-epoch model, so a challenger has something to beat."""
    served = make_served(tmp_path / "ws")
    hone.models.alias("digits@2", "champion", workspace=served.ws)
    yield served
    close_trackers()


def inverted(rows: np.ndarray) -> np.ndarray:
    """The shifted production traffic: digits with inverted contrast (pixels are 0..16)."""
    return 16.0 - rows


def record_labeled(ws: Workspace, x: np.ndarray, labels: np.ndarray, version: int = 2) -> list[str]:
    """Predictions as a server records them, then labels for every one."""
    model = opened(ws)
    recorder = Recorder(model.db, model.blobs, ws.journal_dir / "predictions", interval=3600)
    ids = [f"{time.time_ns():020x}{i:012x}" for i in range(len(x))]
    for start in range(0, len(x), 50):
        end = min(len(x), start + 50)
        recorder.record(
            Answered(
                "digits",
                version,
                time.time() + start,  # later batches are fresher
                ids[start:end],
                np.asarray(x[start:end], np.float64),
                [0] * (end - start),
                np.full((end - start, 10), 0.1, np.float32),
                [1.0] * (end - start),
            )
        )
    assert recorder.close()
    give_feedback_many(
        model.db, [FeedbackItem(i, int(t)) for i, t in zip(ids, labels, strict=True)]
    )
    return ids


def test_harvest_appends_the_labeled_predictions_the_base_lacks(fresh_served: Served) -> None:
    ws = fresh_served.ws
    model = opened(ws)
    x, y = fresh_served.rows[:50], fresh_served.labels[:50]
    ids = record_labeled(ws, inverted(x), y)
    champion, base = champion_base(model.db, model.blobs, ws.home, "digits", "champion")
    assert count_new_labels(model.db, "digits") == 50
    done = harvest(model.db, model.blobs, "digits", base, fresh_share=0.2, preprocessing="keep")
    new = done.version
    assert new.manifest.parents == (base.id,) and done.preprocessing == "kept"
    assert new.rows == base.rows + 50
    assert new.splits["fresh"] == 10 and new.splits["train"] == base.splits["train"] + 40
    assert new.manifest.transforms == base.manifest.transforms
    # The freshest 10 are held out; rows hold the raw inputs and the labels given.
    fx, fy = new.to_numpy("fresh", raw=True)
    np.testing.assert_array_equal(fx, inverted(x[40:]))
    assert fy is not None and fy.tolist() == y[40:].tolist()
    with model.db.read() as conn:
        links = conn.execute(
            select(prediction_harvests).where(prediction_harvests.c.dataset_version == new.id)
        ).all()
    assert sorted(r.request_id for r in links) == sorted(ids)
    table = new.to_arrow("fresh")
    assert set(table.column("__sample_id").to_pylist()) == {
        r.sample_id for r in links if r.split == "fresh"
    }
    # Taken: nothing new is waiting, and nothing is left to harvest into the new version.
    assert count_new_labels(model.db, "digits") == 0
    with pytest.raises(NotFoundError, match="no labeled predictions"):
        harvest(model.db, model.blobs, "digits", new)
    # The same base again (a challenger that lost): the same rows, the same version.
    again = harvest(model.db, model.blobs, "digits", base, fresh_share=0.2, preprocessing="keep")
    assert again.version.id == new.id
    del champion


def test_harvest_can_refit_the_normalization(fresh_served: Served) -> None:
    ws = fresh_served.ws
    model = opened(ws)
    record_labeled(ws, inverted(fresh_served.rows[:60]), fresh_served.labels[:60])
    _, base = champion_base(model.db, model.blobs, ws.home, "digits", "champion")
    done = harvest(model.db, model.blobs, "digits", base, fresh_share=0.25, preprocessing="refit")
    (step,) = done.version.manifest.transforms
    (old,) = base.manifest.transforms
    assert done.preprocessing == "refitted"
    assert step["fitted_rows"] == old["fitted_rows"] + 45
    assert step["shift"] != old["shift"]
    assert done.version.manifest.parents != (base.id,)  # normalize(append(base's parent))


def test_auto_preprocessing_refits_only_for_a_far_drift(fresh_served: Served) -> None:
    """Most new rows far out: a drift, re-fitted. A few: outliers, kept."""
    ws = fresh_served.ws
    model = opened(ws)
    _, base = champion_base(model.db, model.blobs, ws.home, "digits", "champion")
    record_labeled(ws, fresh_served.rows[:10], fresh_served.labels[:10])  # not drifted
    near = harvest(model.db, model.blobs, "digits", base)
    assert near.preprocessing == "kept" and "0.0% of the new rows" in near.why
    record_labeled(ws, inverted(fresh_served.rows[30:60]), fresh_served.labels[30:60])
    far = harvest(model.db, model.blobs, "digits", base)
    assert far.preprocessing == "refitted" and "drifted" in far.why
    assert far.rows == 40  # the base lacks both groups: 30 of 40 rows far out
    with pytest.raises(ValidationError, match="preprocessing"):
        harvest(model.db, model.blobs, "digits", base, preprocessing="sometimes")
    with pytest.raises(ValidationError, match="made by append"):
        harvest(model.db, model.blobs, "digits", near.version, preprocessing="refit")


@pytest.mark.parametrize("share", [-0.1, 0.95, float("nan"), True, "0.2"])
def test_harvest_refuses_a_bad_fresh_share(fresh_served: Served, share: object) -> None:
    model = opened(fresh_served.ws)
    _, base = champion_base(model.db, model.blobs, fresh_served.ws.home, "digits", "champion")
    with pytest.raises(ValidationError, match="fresh share"):
        harvest(model.db, model.blobs, "digits", base, fresh_share=share)  # type: ignore[arg-type]


def _loop_runs(ws: Workspace) -> list[dict[str, str]]:
    db = opened(ws).db
    with db.read() as conn:
        found = conn.execute(select(runs.c.id, runs.c.status, runs.c.parent_run_id)).all()
        tagged = conn.execute(select(tags.c.run_id, tags.c.key, tags.c.value)).all()
    by_run: dict[str, dict[str, str]] = {
        r.id: {"id": r.id, "status": r.status, "parent": r.parent_run_id or ""} for r in found
    }
    for t in tagged:
        by_run[t.run_id][t.key] = t.value
    return [r for r in by_run.values() if r.get("hone.kind") == "loop"]


def test_the_loop_promotes_a_better_challenger_and_servers_switch(fresh_served: Served) -> None:
    ws = fresh_served.ws
    server = start_server(ws, "digits@champion", "--reload-every", "0.2")
    try:
        x, y = inverted(fresh_served.rows[:200]), fresh_served.labels[:200]
        answers = server.predict(x).json()["predictions"]
        assert server.predict(x[:1]).json()["version"] == 2
        reply = server.feedback(
            [
                {"request_id": a["request_id"], "label": int(t)}
                for a, t in zip(answers, y, strict=True)
            ]
        )
        assert reply.status_code == 200
        said: list[str] = []
        result = run_loop(
            "digits", min_new_labels=100, gate="accuracy >= 0", workspace=ws, say=said.append
        )
        assert result.outcome == "promoted", result.message
        assert result.champion_before == 2 and result.champion_after == 3
        assert result.challenger == "digits@3" and any("harvesting" in s for s in said)
        assert hone.models.get("digits@champion", workspace=ws).version == 3
        assert hone.models.get("digits@challenger", workspace=ws).version == 3
        deadline = time.monotonic() + 20
        while server.predict(x[:1]).json()["version"] != 3:
            assert time.monotonic() < deadline, "the server did not switch"
            time.sleep(0.1)
    finally:
        server.stop()
    # Tracked: the loop's run, its training child, its input, the promotion it cites.
    (loop,) = _loop_runs(ws)
    assert loop["status"] == "finished" and loop["hone.loop"] == "promoted"
    assert loop["hone.loop.challenger"] == "digits@3"
    train_run = hone.models.get("digits@3", workspace=ws).run_id
    assert result.steps["train"] == train_run
    db = opened(ws).db
    with db.read() as conn:
        parent = conn.execute(select(runs.c.parent_run_id).where(runs.c.id == train_run)).scalar()
    assert parent == loop["id"]
    data = hone.data.get(result.harvest["version"] if result.harvest else "", workspace=ws)
    assert hone.models.get("digits@3", workspace=ws).dataset_version == data.id
    history = hone.models.history("digits", workspace=ws)
    assert any(
        e.to_version == 3 and e.alias == "champion" and e.run_id == result.steps["promotion"]
        for e in history
    )


def test_a_failing_gate_holds_the_champion(fresh_served: Served) -> None:
    ws = fresh_served.ws
    record_labeled(ws, inverted(fresh_served.rows[:40]), fresh_served.labels[:40])
    result = run_loop("digits", gate="accuracy > 1", workspace=ws)
    assert result.outcome == "held" and "stays champion" in result.message
    assert hone.models.get("digits@champion", workspace=ws).version == 2
    assert hone.models.get("digits@challenger", workspace=ws).version == 3


def test_too_few_new_labels_changes_nothing(fresh_served: Served) -> None:
    ws = fresh_served.ws
    record_labeled(ws, inverted(fresh_served.rows[:5]), fresh_served.labels[:5])
    datasets_before = len(hone.data.versions("digits", workspace=ws))
    result = run_loop("digits", min_new_labels=6, workspace=ws)
    assert result.outcome == "skipped" and "5 new labels" in result.message
    assert len(hone.data.versions("digits", workspace=ws)) == datasets_before
    assert [v.version for v in hone.models.versions("digits", workspace=ws)] == [1, 2]
    assert _loop_runs(ws) == []


def test_a_bad_gate_is_refused_before_any_work(fresh_served: Served) -> None:
    ws = fresh_served.ws
    record_labeled(ws, inverted(fresh_served.rows[:40]), fresh_served.labels[:40])
    for gate, words in (
        ("accuracy > nosuch", "nosuch"),
        ("accuracy >", "gate"),
        ("mse < 1", "mse"),
    ):
        with pytest.raises(FilterError, match=words):
            run_loop("digits", gate=gate, workspace=ws)
    assert len(hone.data.versions("digits", workspace=ws)) == 2
    assert _loop_runs(ws) == []


def test_a_failing_step_leaves_the_champion_and_says_why(
    fresh_served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registration fails (as an export that does not verify would) after the challenger
    is trained: the loop run ends failed, names why, the champion stays, the lease goes."""
    import hone.loop.cycle

    ws = fresh_served.ws
    record_labeled(ws, inverted(fresh_served.rows[:40]), fresh_served.labels[:40])

    def broken(*args: object, **kwargs: object) -> None:
        raise ExportError("the exported graph does not match the eager model")

    monkeypatch.setattr(hone.loop.cycle, "register", broken)
    with pytest.raises(ExportError, match="does not match"):
        run_loop("digits", workspace=ws)
    assert hone.models.get("digits@champion", workspace=ws).version == 2
    # Its harvest is forgotten: the labels wait for the next run, as new.
    assert count_new_labels(opened(ws).db, "digits") == 40
    for bad, words in ((-1, "trials"), (True, "trials"), (0, "nproc")):
        key = "trials" if words == "trials" else "nproc"
        with pytest.raises(ValidationError, match=words):
            run_loop("digits", workspace=ws, **{key: bad})  # type: ignore[arg-type]
    (loop,) = _loop_runs(ws)
    assert loop["status"] == "failed" and loop["hone.loop"] == "failed"
    assert "does not match" in loop["hone.loop.error"]
    with opened(ws).db.read() as conn:
        assert conn.execute(select(loop_leases)).all() == []


def test_two_loop_runs_at_once_one_refuses_and_a_stale_lease_is_taken_over(
    fresh_served: Served,
) -> None:
    ws = fresh_served.ws
    db = opened(ws).db
    record_labeled(ws, inverted(fresh_served.rows[:5]), fresh_served.labels[:5])
    lease = Lease(db, "digits")
    lease.take()
    try:
        with pytest.raises(ConflictError, match="in progress"):
            run_loop("digits", min_new_labels=100, workspace=ws)
        # Its holder died: the lease goes stale and the next run takes it over.
        with db.write() as conn:
            conn.execute(update(loop_leases).values(renewed_at=time.time() - 3600))
        assert run_loop("digits", min_new_labels=100, workspace=ws).outcome == "skipped"
    finally:
        lease.give_back()


def _hone(ws: Workspace, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hone.cli.main", "-w", str(ws.home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_the_loop_cli(fresh_served: Served) -> None:
    ws = fresh_served.ws
    record_labeled(ws, inverted(fresh_served.rows[:40]), fresh_served.labels[:40])
    bad = [
        (("loop", "run", "nosuch"), 3, "nosuch"),
        (("loop", "run", "digits", "--min-new-labels", "0"), 2, "min new labels"),
        (("loop", "run", "digits", "--fresh-share", "2"), 2, "fresh share"),
        (("loop", "run", "digits", "--nproc", "0"), 2, "nproc"),
        (("loop", "harvest", "digits", "--champion", "latest"), 2, "latest"),
        (("loop", "watch", "digits", "--every", "never"), 2, "--every"),
        (("loop", "watch", "digits", "--max-runs", "-1"), 2, "--max-runs"),
    ]
    for args, code, words in bad:
        done = _hone(ws, *args)
        assert done.returncode == code and words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert len(hone.data.versions("digits", workspace=ws)) == 2
    watched = _hone(
        ws,
        *("loop", "watch", "digits", "--min-new-labels", "10", "--every", "1s"),
        *("--max-runs", "1", "--gate", "accuracy >= 0"),
    )
    assert watched.returncode == 0, watched.stderr
    assert "running the loop" in watched.stdout and "after 1 loop run" in watched.stdout
    assert hone.models.get("digits@champion", workspace=ws).version == 3
    ran = _hone(ws, "loop", "run", "digits", "--min-new-labels", "1", "--json")
    assert json.loads(ran.stdout)["outcome"] == "skipped"
    record_labeled(ws, inverted(fresh_served.rows[40:60]), fresh_served.labels[40:60])
    harvested = _hone(ws, "loop", "harvest", "digits", "--json")
    assert harvested.returncode == 0, harvested.stderr
    assert json.loads(harvested.stdout)["splits"] == {"train": 16, "fresh": 4}


def test_the_loop_can_run_a_short_study_first(fresh_served: Served) -> None:
    ws = fresh_served.ws
    record_labeled(ws, inverted(fresh_served.rows[:40]), fresh_served.labels[:40])
    said: list[str] = []
    result = run_loop("digits", trials=2, gate="accuracy >= 0", workspace=ws, say=said.append)
    assert result.outcome == "promoted" and "study" in result.steps
    assert any("a short study: 2 trials" in s for s in said)
    # The challenger trained with the study's best trial's params.
    from hone.tune.studies import list_studies

    (study,) = [s for s in list_studies(opened(ws).db) if s.name.startswith("loop-")]
    assert study.result is not None and study.run_id == result.steps["study"]
    best = study.result["params"]
    challenger = hone.models.get("digits@challenger", workspace=ws)
    for key, value in best.items():
        assert challenger.body["params"][key] == value
