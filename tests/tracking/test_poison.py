"""One poisoned record never takes a workspace down (issue 6, faults 1 and 10).

Values a backend would refuse are refused when logged; a record the store still refuses is
set aside with the reason, while the rest of its journal, other runs and every command go
on."""

from __future__ import annotations

import json
import logging
import math
import random
import string
import threading
import time
from pathlib import Path

import pytest

import hone
from hone.cli.main import main
from hone.config import Workspace
from hone.errors import NotFoundError, ValidationError
from hone.tracking.quarantine import quarantined_records
from hone.tracking.sink import StoreSink
from hone.tracking.tracker import get_tracker
from tests.tracking.helpers import crash, journal_only

SURROGATE = "caf\udce9"  # what a non-UTF-8 byte from argv or a file name becomes


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.set_tag("t", "a\x00b"), "NUL character"),
        (lambda r: r.log_param("p", "x\x00"), "NUL character"),
        (lambda r: r.set_tag("t", SURROGATE), "lone surrogate"),
        (lambda r: r.log_params({"p": SURROGATE}), "lone surrogate"),
        (lambda r: r.log_metric("m", 1.0, timestamp=math.nan), "not finite"),
        (lambda r: r.log_metric("m", 1.0, timestamp=math.inf), "not finite"),
        (lambda r: r.log_text("x", "ab/" * 400 + "c"), "limit is 1,000"),
        (lambda r: r.log_text("x", "a\x00b"), "NUL character"),
        (lambda r: r.log_text("x", SURROGATE), "lone surrogate"),
    ],
)
def test_values_a_backend_would_refuse_are_refused_when_logged(
    workspace: Workspace, call: object, message: str
) -> None:
    with hone.start_run(workspace=workspace) as run:
        before = run._writer.offset
        with pytest.raises(ValidationError, match=message):
            call(run)  # type: ignore[operator]
        assert run._writer.offset == before  # nothing was journaled
    got = hone.get_run(run.id, workspace=workspace)
    assert got.status is hone.RunStatus.FINISHED and not got.tags and not got.params


def test_log_metrics_checks_the_whole_call_before_logging_any(workspace: Workspace) -> None:
    with hone.start_run(workspace=workspace) as run:
        with pytest.raises(ValidationError, match="not a number"):
            run.log_metrics({"good": 1.0, "bad": "1.5"})  # type: ignore[dict-item]
        with pytest.raises(ValidationError, match="not allow"):
            run.log_metrics({"good": 1.0, "bad key!": 2.0})
        run.log_metric("other", 3.0)
    got = hone.get_run(run.id, workspace=workspace)
    assert set(got.metrics) == {"other"}


def test_an_artifact_folder_with_a_bad_name_stores_no_blob(
    workspace: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    deep = folder.joinpath(*["d" * 200] * 5)  # a nested path of over 1,000 characters
    deep.mkdir(parents=True)
    (folder / "a.txt").write_text("kept out")
    (deep / "f.txt").write_text("too deep")
    blobs = Path(workspace.blob_uri.removeprefix("file://"))
    with hone.start_run(workspace=workspace) as run:
        before = sorted(blobs.rglob("*")) if blobs.exists() else []
        with pytest.raises(ValidationError, match="limit is 1,000"):
            run.log_artifact(folder)
        assert (sorted(blobs.rglob("*")) if blobs.exists() else []) == before
    assert [a.path for a in hone.get_run(run.id, workspace=workspace).artifacts] in (
        [],
        ["git.diff"],  # when the tests run from a dirty git tree
    )


def test_a_refused_record_in_a_dead_journal_is_set_aside_and_the_rest_applied(
    workspace: Workspace,
) -> None:
    run = hone.start_run("poison", params={"lr": 0.1}, workspace=workspace)
    run.log_metric("loss", 0.5, step=0)
    # Past the checks at log time: a tag no backend can store, and a malformed record.
    journal_only(run, "tags", {"values": {"bad": SURROGATE}})
    journal_only(run, "tags", {"values": "not a mapping"})
    journal_only(run, "tags", {"values": {"good": "kept"}})
    run.log_metric("loss", 0.25, step=1)
    crash(run)
    report = hone.sync(workspace=workspace)
    assert report.killed_runs == [run.id]
    assert report.quarantined_count == 2
    reasons = sorted(q.reason for q in report.quarantined)
    assert "refused" in reasons[1] or "surrogate" in reasons[1]
    assert "text keys and values" in reasons[0]
    got = hone.get_run(run.id, workspace=workspace)
    assert got.tags == {"good": "kept"} and got.params == {"lr": "0.1"}
    assert [p.value for p in hone.get_metric_history(run.id, "loss", workspace=workspace)] == [
        0.5,
        0.25,
    ]
    stored = quarantined_records(get_tracker(workspace).db, run.id)
    assert sorted(q.kind for q in stored) == ["tags", "tags"]
    assert all(q.record.isascii() for q in stored)
    assert hone.sync(workspace=workspace).quarantined_count == 0  # nothing left to replay


def test_postgres_refuses_nul_bytes_that_sqlite_takes_and_nothing_is_blocked(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    run = hone.start_run("nul", workspace=workspace)
    journal_only(run, "tags", {"values": {"t": "a\x00b"}})
    run.log_metric("loss", 1.0)
    crash(run)
    other = hone.start_run("healthy", workspace=workspace)
    other.log_metric("acc", 0.9)
    other.end()
    for argv in (["sync"], ["runs", "list"], ["runs", "show", run.id], ["data", "list"]):
        assert main(["--workspace", str(workspace.home), *argv]) == 0, argv
    out = capsys.readouterr().out
    got = hone.get_run(run.id, workspace=workspace)
    assert got.metrics["loss"].value == 1.0
    if workspace.store_uri.startswith("postgresql"):
        assert got.tags == {} and "set aside" in out and "NUL" in out
    else:
        assert got.tags == {"t": "a\x00b"}


def test_a_refused_record_of_a_live_run_is_set_aside_and_reported(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    from hone.tracking.records import Event

    with hone.start_run(workspace=workspace) as run:
        run.set_tag("good", "yes")
        with run._wlock:  # as if it had slipped past the checks
            run._events.append(Event("tags", {"time": time.time(), "values": {"t": SURROGATE}}))
        run.log_metric("loss", 1.0)
        with caplog.at_level(logging.WARNING, "hone.tracking"):
            got = run.fetch()
    assert got.tags == {"good": "yes"} and got.metrics["loss"].value == 1.0
    assert len(run.quarantined) == 1 and run.quarantined[0].kind == "tags"
    assert "set aside" in caplog.text
    assert main(["--workspace", str(workspace.home), "runs", "show", run.id, "--json"]) == 0


def test_the_flusher_survives_any_exception_and_other_runs_keep_flowing(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = get_tracker(workspace)
    tracker.flusher.interval = 0.05
    real = StoreSink.apply
    sick = hone.start_run("sick", workspace=workspace)
    healthy = hone.start_run("healthy", parent=None, workspace=workspace)
    failures = threading.Event()

    def flaky(self: StoreSink, batch: object, segment: str | None = None) -> object:
        if getattr(batch, "run_id", None) == sick.id:
            failures.set()
            raise RuntimeError("a bug in a record")
        return real(self, batch, segment=segment)  # type: ignore[arg-type]

    monkeypatch.setattr(StoreSink, "apply", flaky)
    with caplog.at_level(logging.WARNING, "hone.tracking"):
        sick.log_metric("x", 1.0)
        healthy.log_metric("y", 1.0)
        assert failures.wait(10)
        deadline = time.monotonic() + 10
        while not _has_metric(workspace, healthy.id, "y"):
            assert time.monotonic() < deadline, "the healthy run never reached the store"
            time.sleep(0.05)
    assert "flusher carries on" in caplog.text
    assert tracker.flusher._thread is not None and tracker.flusher._thread.is_alive()
    monkeypatch.setattr(StoreSink, "apply", real)
    healthy.end()
    sick.end()  # its journal still holds everything
    got = hone.get_run(sick.id, workspace=workspace)
    assert got.status is hone.RunStatus.FINISHED and got.metrics["x"].value == 1.0


def _has_metric(workspace: Workspace, run_id: str, key: str) -> bool:
    try:
        return key in hone.get_run(run_id, workspace=workspace).metrics
    except NotFoundError:  # not even the run row yet
        return False


def test_long_values_within_the_documented_limits_are_stored_on_every_backend(
    workspace: Workspace,
) -> None:
    """PostgreSQL's B-tree holds rows of at most ~2.7 kB: a param value's index holds its
    first 100 characters, so 8,000-character values fit (and are still found by filters)."""
    rng = random.Random(0)
    letters = "".join(rng.choice(string.ascii_letters) for _ in range(8000))
    cjk = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(3000))
    path = "é/" * 500 + "x"  # 1,001 characters, 1,501 bytes: within both limits
    with hone.start_run(params={"config": letters, "cjk": cjk}, workspace=workspace) as run:
        run.log_param("later", letters[::-1])  # claimed in the store as it is logged
        run.set_tag("long", cjk)
        run.log_text("hello", path[:-2])
    got = hone.get_run(run.id, workspace=workspace)
    assert got.params == {"config": letters, "cjk": cjk, "later": letters[::-1]}
    assert got.tags["long"] == cjk and path[:-2] in [a.path for a in got.artifacts]
    assert not run.quarantined
    found = hone.search_runs(filter=f"params.config = '{letters}'", workspace=workspace)
    assert [r.id for r in found] == [run.id]
    near = letters[:100] + "x" * 10  # the same first 100 characters, another value
    assert hone.search_runs(filter=f"params.config = '{near}'", workspace=workspace) == []


@pytest.mark.parametrize(
    ("frame", "data"),
    [
        ("tags", {"time": 10**400, "values": {"t": "v"}}),
        ("end", {"time": 1.0, "status": ["x"]}),
        ("\ud800", {"time": 1.0}),
        ("\x00x", {"time": 1.0}),
        ("artifact", {"time": 1.0, "path": "p", "digest": "d", "size": 10**30}),
        ("tags", {"time": 1.0, "values": {"t": [1, 2]}}),
    ],
)
def test_a_crafted_record_with_a_valid_crc_blocks_nothing(
    workspace: Workspace, frame: str, data: dict[str, object]
) -> None:
    bad = hone.start_run("crafted", workspace=workspace)
    journal_only(bad, frame, data)
    bad.log_metric("after", 1.0)
    crash(bad)
    healthy = hone.start_run("healthy", workspace=workspace)
    healthy.log_metric("x", 2.0)
    crash(healthy)  # both journals wait for the replay
    report = hone.sync(workspace=workspace)
    assert report.segments == 2 and report.quarantined_count == 1
    assert hone.get_run(healthy.id, workspace=workspace).metrics["x"].value == 2.0
    assert hone.get_run(bad.id, workspace=workspace).metrics["after"].value == 1.0
    assert main(["--workspace", str(workspace.home), "runs", "show", bad.id]) == 0


def test_a_start_with_malformed_extras_still_starts_its_run(workspace: Workspace) -> None:
    """An odd environment or git state (a journal from elsewhere) is dropped, not the run."""
    from hone.tracking.records import encode_event

    run = hone.start_run("extras", workspace=workspace)
    run.log_metric("loss", 0.5)
    segment = crash(run)
    data = segment.read_bytes()
    head = encode_event(
        "start",
        {
            "time": 1.0,
            "run_id": run.id,
            "experiment": "extras",
            "name": "n",
            "environment": 7,
            "parent_run_id": [1],
            "git_dirty": 5,
        },
    )
    from hone.tracking.records import decode_frames

    (first_end, _), *_ = decode_frames(data)
    segment.write_bytes(head + data[first_end:])
    report = hone.sync(workspace=workspace)
    assert report.quarantined_count == 1 and "dropped" in report.quarantined[0].reason
    got = hone.get_run(run.id, workspace=workspace)
    assert got.environment == {} and got.parent_run_id is None
    assert got.metrics["loss"].value == 0.5
    assert main(["--workspace", str(workspace.home), "runs", "list", "--json"]) == 0


def test_a_refused_key_is_set_aside_in_a_few_records_not_one_per_point(
    workspace: Workspace,
) -> None:
    """A key with a NUL character (from a foreign journal): PostgreSQL refuses its series,
    and its 5,000 points go aside in one record rather than 5,000 transactions."""
    from hone.tracking.records import encode_metric

    run = hone.start_run("key", workspace=workspace)
    with run._wlock:
        for step in range(5000):
            run._writer.write(encode_metric(b"k\x00ey", 1.0, step, 1.0))
    run.log_metric("good", 1.0)
    crash(run)
    report = hone.sync(workspace=workspace)
    stored = quarantined_records(get_tracker(workspace).db, run.id)
    got = hone.get_run(run.id, workspace=workspace)
    assert got.metrics["good"].value == 1.0
    if workspace.store_uri.startswith("postgresql"):
        assert report.quarantined_count == len(stored) == 1
        assert stored[0].kind == "metrics" and stored[0].record.count("[") == 5001
    else:
        assert report.quarantined_count == 0 and len(got.metrics) == 2


def test_set_aside_records_can_be_applied_again_once_their_cause_is_fixed(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import delete

    from hone.store.schema import params

    with hone.start_run("retry", params={"seed": "1"}, workspace=workspace) as run:
        pass
    sink = get_tracker(workspace).sink
    from hone.tracking.batch import Batch

    refused = sink.apply(Batch(run.id, params={"seed": "2"}))  # a second writer's value
    assert [q.kind for q in refused] == ["params"]
    bad = hone.start_run("bad", workspace=workspace)
    journal_only(bad, "tags", {"values": {"t": SURROGATE}})  # no store will ever take it
    crash(bad)
    hone.sync(workspace=workspace)
    with sink.db.write() as conn:  # the user decides the second value was the right one
        conn.execute(delete(params).where(params.c.run_id == run.id))
    home = str(workspace.home)
    assert main(["--workspace", home, "sync", "--retry-set-aside", "--json"]) == 0
    retried = json.loads(capsys.readouterr().out)["retried"]
    assert retried == {"applied": 1, "refused": 1, "unreadable": 0}
    assert hone.get_run(run.id, workspace=workspace).params == {"seed": "2"}
    assert quarantined_records(sink.db, run.id) == []
    assert len(quarantined_records(sink.db, bad.id)) == 1  # still refused, kept once
    assert main(["--workspace", home, "sync", "--retry-set-aside"]) == 0
    assert "applied 0 set-aside record(s); 1 still refused" in capsys.readouterr().out
