"""The predictions recorder on its own: journal first, store in the background, memory
bounded, nothing lost when the store is away or the process dies."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import signal
import time
from collections.abc import Callable

import numpy as np
import pytest
from sqlalchemy import update

from hone.blobs import BlobStore, open_blob_store
from hone.config import Workspace
from hone.predictions import (
    Answered,
    Recorder,
    count_predictions,
    list_predictions,
    replay_abandoned,
)
from hone.predictions.records import INLINE_INPUT_BYTES
from hone.store.database import Database, database_for
from hone.store.schema import predictions
from hone.tracking.checkpoints import collect_unreferenced
from tests.serve.conftest import store_locked


def _batch(start: int, rows: int, width: int = 64, version: int = 1) -> Answered:
    x = np.arange(start * width, (start + rows) * width, dtype=np.float64).reshape(rows, width)
    p = np.full((rows, 3), 1 / 3, np.float32)
    return Answered(
        model="m",
        version=version,
        at=time.time(),
        request_ids=[f"{i:032x}" for i in range(start, start + rows)],
        inputs=x,
        outputs=[i % 3 for i in range(start, start + rows)],
        probabilities=p,
        latency_ms=[0.25] * rows,
    )


def _stores(ws: Workspace) -> tuple[Database, BlobStore]:
    return database_for(ws.store_uri), open_blob_store(ws.blob_uri)


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_records_reach_the_store_in_the_background(workspace: Workspace) -> None:
    db, blobs = _stores(workspace)
    recorder = Recorder(db, blobs, workspace.journal_dir / "predictions", interval=0.05)
    for start in range(0, 100, 10):
        recorder.record(_batch(start, 10))
    _wait(lambda: count_predictions(db, "m") == 100)
    assert recorder.close()
    assert not recorder.journal_path.exists()
    rows = {r.request_id: r for r in list_predictions(db, "m", limit=1000)}
    r = rows[f"{42:032x}"]
    assert r.input is not None
    np.testing.assert_array_equal(np.frombuffer(r.input, np.float64), _batch(42, 1).inputs[0])
    assert r.prediction == 0 and r.version == 1 and r.latency_ms == 0.25
    assert r.probabilities == pytest.approx([1 / 3] * 3)


def test_a_full_memory_queue_waits_in_the_journal_and_is_written_later(
    sqlite_workspace: Workspace,
) -> None:
    db, blobs = _stores(sqlite_workspace)
    recorder = Recorder(
        db, blobs, sqlite_workspace.journal_dir / "predictions", interval=3600, max_queued_rows=25
    )
    for start in range(0, 200, 10):
        recorder.record(_batch(start, 10))
    assert recorder.stats.queued <= 25 and recorder.stats.spilled == 180
    assert recorder.stats.full_since is not None
    with recorder.lock:
        recorder.flush()
    assert count_predictions(db, "m") == 200
    stats = recorder.stats
    assert stats.full_since is None and stats.written == 200
    recorder.record(_batch(200, 5))  # back to memory
    assert recorder.stats.queued == 5
    assert recorder.close() and count_predictions(db, "m") == 205


def test_the_store_away_keeps_records_in_the_journal_until_it_is_back(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds SQLite's write lock past the busy timeout: every write fails,
    as with a store that cannot be reached; the records wait and are written after."""
    from hone.store.database import dispose_databases

    monkeypatch.setenv("HONE_STORE_TIMEOUT", "0.5")
    dispose_databases()
    db, blobs = _stores(sqlite_workspace)
    recorder = Recorder(db, blobs, sqlite_workspace.journal_dir / "predictions", interval=0.05)
    with store_locked(db):
        for start in range(0, 60, 6):
            recorder.record(_batch(start, 6))
        _wait(lambda: recorder.stats.failures > 0, timeout=120)
        assert recorder.stats.written == 0 and recorder.stats.full_since is not None
    _wait(lambda: count_predictions(db, "m") == 60, timeout=60)
    assert recorder.close()
    dispose_databases()


def _record_then_die(home: str, rows: int, ready: multiprocessing.synchronize.Event) -> None:
    ws = Workspace.discover(home)
    db, blobs = _stores(ws)
    recorder = Recorder(db, blobs, ws.journal_dir / "predictions", interval=3600)
    for start in range(0, rows, 7):
        recorder.record(_batch(start, min(7, rows - start)))
    ready.set()
    time.sleep(60)


def test_a_killed_process_journal_is_written_by_the_next(sqlite_workspace: Workspace) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=_record_then_die, args=(str(sqlite_workspace.home), 300, ready))
    child.start()
    assert ready.wait(120)
    db, blobs = _stores(sqlite_workspace)
    journal = sqlite_workspace.journal_dir / "predictions"
    assert replay_abandoned(db, blobs, journal) == 0  # alive: its segment is locked
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert count_predictions(db, "m") == 0
    assert replay_abandoned(db, blobs, journal) == 300
    assert count_predictions(db, "m") == 300
    assert list(journal.glob("*.jnl")) == []
    assert replay_abandoned(db, blobs, journal) == 0


def test_replaying_twice_changes_nothing_and_keeps_labels(sqlite_workspace: Workspace) -> None:
    db, blobs = _stores(sqlite_workspace)
    journal = sqlite_workspace.journal_dir / "predictions"
    recorder = Recorder(db, blobs, journal, interval=3600)
    recorder.record(_batch(0, 3))
    with recorder.lock:
        recorder.flush()
    with db.write() as conn:  # a label given meanwhile (model "m" is not registered here)
        conn.execute(
            update(predictions)
            .where(predictions.c.request_id == f"{1:032x}")
            .values(label="2", labeled_at=time.time())
        )
    # The process "dies" with its segment on disk: replay rewrites rows already stored.
    segment = recorder.journal_path
    copy = journal / "copy.jnl"
    copy.write_bytes(segment.read_bytes())
    assert recorder.close()
    assert replay_abandoned(db, blobs, journal) == 0  # all three were stored already
    (labeled,) = list_predictions(db, "m", labeled=True)
    assert labeled.label == 2 and count_predictions(db, "m") == 3


def test_a_damaged_journal_is_set_aside_and_the_rest_written(sqlite_workspace: Workspace) -> None:
    db, blobs = _stores(sqlite_workspace)
    journal = sqlite_workspace.journal_dir / "predictions"
    recorder = Recorder(db, blobs, journal, interval=3600)
    for start in range(0, 30, 10):
        recorder.record(_batch(start, 10))
    data = bytearray(recorder.journal_path.read_bytes())
    recorder.close()
    # The middle record's bytes flipped: the first and last are still whole.
    first_end = 8 + int.from_bytes(data[0:4], "little")
    data[first_end + 100 : first_end + 110] = b"\x00garbage!!"
    (journal / "damaged-one.jnl").write_bytes(bytes(data))
    db2 = database_for(f"sqlite:///{sqlite_workspace.home / 'other.db'}")
    from hone.store.migrations import upgrade

    upgrade(db2.engine)
    assert replay_abandoned(db2, blobs, journal) == 20
    assert (journal / "damaged" / "damaged-one.jnl").exists()


def test_a_large_input_is_kept_as_a_blob_that_gc_keeps(sqlite_workspace: Workspace) -> None:
    db, blobs = _stores(sqlite_workspace)
    recorder = Recorder(db, blobs, sqlite_workspace.journal_dir / "predictions", interval=3600)
    width = INLINE_INPUT_BYTES // 8 + 1
    batch = _batch(0, 3, width=width)
    recorder.record(batch)
    assert recorder.close()
    records = sorted(list_predictions(db, "m"), key=lambda r: r.request_id)
    for i, r in enumerate(records):
        assert r.input is None and r.input_digest is not None
        assert np.array_equal(
            np.frombuffer(blobs.get_bytes(r.input_digest), np.float64), batch.inputs[i]
        )
    collect_unreferenced(db, blobs, {r.input_digest for r in records if r.input_digest})
    assert all(blobs.exists(r.input_digest or "-") for r in records)


def test_a_closed_recorder_refuses(sqlite_workspace: Workspace) -> None:
    db, blobs = _stores(sqlite_workspace)
    recorder = Recorder(db, blobs, sqlite_workspace.journal_dir / "predictions")
    recorder.close()
    with pytest.raises(Exception, match="closed"):
        recorder.record(_batch(0, 1))
