"""Journal segments: a live writer holds its lock; an ended or dead one's segment is free."""

from __future__ import annotations

from pathlib import Path

import pytest

from hone.errors import ValidationError
from hone.tracking.journal import JournalWriter, abandoned_segments
from hone.tracking.records import encode_metric


def test_live_segments_are_not_abandoned(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "a" * 32)
    writer.write(encode_metric(b"x", 1.0, 0, 0.0))
    assert list(abandoned_segments(tmp_path)) == []
    writer.close()
    for found in abandoned_segments(tmp_path):
        assert found.run_id == "a" * 32 and found.path == writer.path
        assert list(abandoned_segments(tmp_path)) == []  # claimed while the loop holds it
    assert len(list(abandoned_segments(tmp_path))) == 1


def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "b" * 32)
    writer.close()
    with pytest.raises(ValidationError, match="has ended"):
        writer.write(b"x")


def test_each_writer_gets_its_own_segment(tmp_path: Path) -> None:
    one, two = JournalWriter(tmp_path, "c" * 32), JournalWriter(tmp_path, "c" * 32)
    assert one.path != two.path and one.path.parent == two.path.parent
    one.close()
    two.close()
