"""Labels for served predictions: over HTTP, and in bulk from a CSV file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hone.models.workspace import opened
from hone.predictions import list_predictions, prediction_stats
from hone.store.schema import prediction_feedback
from tests.serve.conftest import Served, StartServer


def _feedback_rows(served: Served, request_id: str) -> list[tuple[str, str | None, str]]:
    from sqlalchemy import select

    db = opened(served.ws).db
    with db.read() as conn:
        rows = conn.execute(
            select(
                prediction_feedback.c.label,
                prediction_feedback.c.previous,
                prediction_feedback.c.source,
            )
            .where(prediction_feedback.c.request_id == request_id)
            .order_by(prediction_feedback.c.id)
        ).all()
    return [tuple(r) for r in rows]


def test_a_label_is_recorded_once_and_a_different_one_is_a_correction(
    served: Served, server_of: StartServer
) -> None:
    server = server_of()
    (prediction,) = server.predict(served.rows[:1]).json()["predictions"]
    rid = prediction["request_id"]
    # Given at once: the prediction may still be on its way to the store.
    first = server.feedback({"request_id": rid, "label": 3}).json()
    assert first["outcome"] == "recorded" and first["label"] == 3 and first["version"] == 1
    again = server.feedback({"request_id": rid, "label": "3"}).json()  # text that spells it
    assert again["outcome"] == "unchanged"
    fixed = server.feedback({"request_id": rid, "label": 4.0}).json()
    assert fixed == {
        "request_id": rid,
        "label": 4,
        "outcome": "corrected",
        "previous": 3,
        "model": "digits",
        "version": 1,
    }
    assert _feedback_rows(served, rid) == [("3", None, "api"), ("4", "3", "api")]
    (record,) = [
        r
        for r in list_predictions(opened(served.ws).db, "digits", labeled=True, limit=10_000)
        if r.request_id == rid
    ]
    assert record.label == 4 and record.labeled_at is not None


def test_a_label_that_is_not_a_class_is_refused_and_nothing_changes(
    served: Served, server_of: StartServer
) -> None:
    server = server_of()
    rid = server.predict(served.rows[:1]).json()["predictions"][0]["request_id"]
    for label in (10, -1, "ten", 3.5, True, None, [1], {"a": 1}):
        reply = server.feedback({"request_id": rid, "label": label})
        assert reply.status_code == 422, (label, reply.text)
        assert "classes" in reply.json()["error"] or "not a class" in reply.json()["error"]
    assert _feedback_rows(served, rid) == []


def test_a_list_of_labels_is_all_or_nothing(served: Served, server_of: StartServer) -> None:
    server = server_of()
    ids = [p["request_id"] for p in server.predict(served.rows[:3]).json()["predictions"]]
    bad = [{"request_id": ids[0], "label": 1}, {"request_id": ids[1], "label": 99}]
    reply = server.feedback(bad)
    assert reply.status_code == 422 and "item 1" in reply.json()["error"]
    assert _feedback_rows(served, ids[0]) == []
    good = server.feedback([{"request_id": i, "label": 2} for i in ids]).json()["feedback"]
    assert [g["outcome"] for g in good] == ["recorded"] * 3


def test_live_accuracy_is_the_share_of_labels_the_model_got_right(
    served: Served, server_of: StartServer
) -> None:
    server = server_of()
    rows, truth = served.rows[:60], served.labels[:60]
    answers = server.predict(rows).json()["predictions"]
    labeled = answers[:45]
    for answer, label in zip(labeled, truth[:45], strict=True):
        assert (
            server.feedback({"request_id": answer["request_id"], "label": int(label)}).status_code
            == 200
        )
    db = opened(served.ws).db
    ours = {a["request_id"] for a in answers}
    right = sum(a["label"] == int(t) for a, t in zip(labeled, truth[:45], strict=True))
    stats = prediction_stats(db, "digits", by="day")
    # Other tests of the module serve this model too: check this test's share through
    # the listing, and the stats' arithmetic on everything.
    records = [r for r in list_predictions(db, "digits", limit=100_000) if r.request_id in ours]
    assert sum(r.label is not None for r in records) == 45
    assert sum(r.label == r.prediction for r in records if r.label is not None) == right
    everything = list_predictions(db, "digits", limit=100_000)
    with_labels = [r for r in everything if r.label is not None]
    assert stats["predictions"] == len(everything)
    assert stats["labeled"] == len(with_labels)
    assert stats["live_accuracy"] == sum(r.label == r.prediction for r in with_labels) / len(
        with_labels
    )
    (v1,) = [v for v in stats["versions"] if v["version"] == 1]
    assert v1["latency_ms"]["p50"] is not None
    assert sum(b["predictions"] for b in stats["buckets"]) == stats["predictions"]


def _hone(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hone.cli.main", "-w", str(served.ws.home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_feedback_import_from_csv(served: Served, server_of: StartServer, tmp_path: Path) -> None:
    server = server_of()
    ids = [p["request_id"] for p in server.predict(served.rows[:4]).json()["predictions"]]
    server.stop()
    good = tmp_path / "labels.csv"
    good.write_text("request_id,label\n" + "".join(f"{i},{n}\n" for n, i in enumerate(ids)) + "\n")
    done = _hone(served, "feedback", "import", str(good), "--json")
    assert done.returncode == 0, done.stderr
    assert '"recorded": 4' in done.stdout
    again = _hone(served, "feedback", "import", str(good), "--json")
    assert '"unchanged": 4' in again.stdout
    cases = {
        "empty.csv": ("", "empty"),
        "header.csv": ("id,label\nx,1\n", "header must name request_id"),
        "fields.csv": (f"request_id,label\n{ids[0]},1,2\n", "line 2"),
        "unknown.csv": (f"request_id,label\n{ids[0]},5\n{'f' * 32},1\n", "line 3"),
        "class.csv": (f"request_id,label\n{ids[0]},5\n{ids[1]},eleven\n", "line 3"),
        "nothing.csv": ("request_id,label\n", "no labels"),
        "binary.csv": (b"\xff\xfe\x00".decode("latin-1"), "UTF-8"),
    }
    for name, (text, words) in cases.items():
        path = tmp_path / name
        path.write_bytes(text.encode("latin-1"))
        done = _hone(served, "feedback", "import", str(path))
        assert done.returncode != 0 and words in done.stderr, (name, done.stderr)
        assert "Traceback" not in done.stderr
    missing = _hone(served, "feedback", "import", str(tmp_path / "none.csv"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    folder = _hone(served, "feedback", "import", str(tmp_path))
    assert folder.returncode == 2 and "folder" in folder.stderr
    # Nothing of the refused files was applied: ids[0] keeps the label 0.
    assert _feedback_rows(served, ids[0]) == [("0", None, "import")]


def test_predictions_list_and_stats_cli(served: Served, server_of: StartServer) -> None:
    server = server_of()
    server.predict(served.rows[:5])
    server.stop()
    listed = _hone(served, "predictions", "list", "digits", "--limit", "3", "--since", "1h")
    assert listed.returncode == 0 and "request id" in listed.stdout
    import json

    rows = json.loads(
        _hone(served, "predictions", "list", "digits", "--unlabeled", "--json").stdout
    )
    assert rows and all(r["label"] is None for r in rows)
    stats = _hone(served, "predictions", "stats", "digits")
    assert stats.returncode == 0 and "per version" in stats.stdout and "p99 ms" in stats.stdout
    js = json.loads(_hone(served, "predictions", "stats", "digits", "--by", "day", "--json").stdout)
    assert js["by"] == "day" and js["predictions"] >= 5
    for args, words in (
        (("predictions", "list", "digits", "--since", "yesterday"), "--since"),
        (("predictions", "list", "no such/model"), "model name"),
        (("predictions", "list", "digits", "--limit", "0"), "limit"),
        (("predictions", "stats", "digits", "--by", "week"), "hour or day"),
    ):
        done = _hone(served, *args)
        assert done.returncode == 2 and words in done.stderr, (args, done.stderr)
    nothing = _hone(served, "predictions", "stats", "unknown-model")
    assert nothing.returncode == 0 and "no predictions" in nothing.stdout
