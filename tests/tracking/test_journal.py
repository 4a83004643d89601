"""Journal segments: a live writer holds its lock; an ended or dead one's segment is free."""

from __future__ import annotations

from pathlib import Path

import pytest

import hone
from hone.config import Workspace
from hone.errors import ValidationError
from hone.tracking.journal import JournalWriter, abandoned_segments
from hone.tracking.records import decode_frames, encode_event, encode_metric
from hone.tracking.tracker import close_retired_segments


def test_live_segments_are_not_abandoned(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path)
    writer.write(encode_event("start", {"run_id": "a" * 32, "time": 0.0}))
    writer.write(encode_metric(b"x", 1.0, 0, 0.0))
    assert list(abandoned_segments(tmp_path)) == []
    writer.close()
    for found in abandoned_segments(tmp_path):
        assert found.run_id == "a" * 32 and found.path == writer.path and found.owns_run
        assert list(abandoned_segments(tmp_path)) == []  # claimed while the loop holds it
    assert len(list(abandoned_segments(tmp_path))) == 1


def test_a_segment_that_attached_does_not_own_its_run(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path)
    writer.write(encode_event("attach", {"run_id": "b" * 32, "time": 0.0}))
    writer.close()
    (found,) = abandoned_segments(tmp_path)
    assert found.run_id == "b" * 32 and not found.owns_run


def test_writes_after_seal_are_refused(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path)
    writer.seal()
    with pytest.raises(ValidationError, match="has ended"):
        writer.write(b"x")
    writer.close()


def test_segments_grow_past_their_first_mapping_and_trim_on_close(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path)
    frame = encode_metric(b"loss", 0.5, 0, 1.0)
    count = 3 * (64 << 10) // len(frame)
    for _ in range(count):
        writer.write(frame)
    writer.close()
    data = writer.path.read_bytes()
    assert len(data) == count * len(frame)
    assert len(list(decode_frames(data))) == count


def test_a_recycled_segment_starts_empty(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path)
    writer.write(encode_metric(b"x", 1.0, 0, 0.0))
    writer.seal()
    writer.recycle()
    writer.write(encode_metric(b"y", 2.0, 0, 0.0))
    writer.close()
    assert [r.key for _, r in decode_frames(writer.path.read_bytes())] == ["y"]  # type: ignore[union-attr]


def test_ended_runs_leave_no_segments_behind(sqlite_workspace: Workspace) -> None:
    for _ in range(3):
        with hone.start_run(workspace=sqlite_workspace) as run:
            run.log_metric("x", 1.0)
    close_retired_segments()
    assert list(sqlite_workspace.journal_dir.glob("*.jnl")) == []
    assert hone.sync(workspace=sqlite_workspace).segments == 0


def test_many_short_runs_reuse_a_few_segments(sqlite_workspace: Workspace) -> None:
    paths = set()
    for _ in range(20):
        with hone.start_run(workspace=sqlite_workspace) as run:
            run.log_metric("x", 1.0)
            paths.add(run._writer.path)
        run._tracker.flusher.close_retired()  # what the flusher thread does on its tick
    assert len(paths) == 1
    assert {r.status for r in hone.search_runs(workspace=sqlite_workspace)} == {
        hone.RunStatus.FINISHED
    }
