"""A failed ``hone init`` leaves an existing workspace exactly as it was, and leaves nothing
of a new one (issue 6, fault 13): settings are written only after the store answered and
was migrated, and the blob store was found writable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import hone
from hone.config import Workspace
from hone.errors import HoneError, StoreUnavailableError, ValidationError
from hone.store.setup import init_workspace
from hone.tracking.tracker import close_trackers

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"  # port 1 refuses at once

BAD_INIT = [
    pytest.param({"store_uri": UNREACHABLE}, StoreUnavailableError, "127.0.0.1:1/x", id="down"),
    pytest.param({"store_uri": "not a url"}, ValidationError, "not a database URL", id="url"),
    pytest.param({"store_uri": "mysql://u@h/db"}, ValidationError, "not supported", id="mysql"),
    pytest.param(
        {"store_uri": "postgresql://u:pw@h:x/db"}, ValidationError, "u:\\*{3}@", id="port"
    ),
    pytest.param({"blob_uri": "ftp://example.com/b"}, ValidationError, "cannot hold", id="ftp"),
    pytest.param({"blob_uri": "file://relative"}, ValidationError, "no local folder", id="file"),
]


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize(("settings", "error", "message"), BAD_INIT)
def test_a_failed_init_leaves_an_existing_workspace_as_it_was(
    workspace: Workspace, settings: dict[str, Any], error: type[HoneError], message: str
) -> None:
    with hone.start_run("kept", workspace=workspace) as run:
        run.log_metric("x", 1.0)
    close_trackers()
    before = files_of(workspace.home)
    with pytest.raises(error, match=message):
        init_workspace(workspace.home, **settings)
    assert files_of(workspace.home) == before
    again = Workspace.discover(workspace.home)
    assert again == workspace
    (found,) = hone.search_runs(workspace=again)  # later commands still work
    assert found.id == run.id


@pytest.mark.parametrize(("settings", "error", "message"), BAD_INIT)
def test_a_failed_init_of_a_new_workspace_leaves_nothing(
    tmp_path: Path, settings: dict[str, Any], error: type[HoneError], message: str
) -> None:
    with pytest.raises(error, match=message):
        init_workspace(tmp_path / "new" / "ws", **settings)
    assert not (tmp_path / "new").exists()


def test_a_failure_after_migrating_takes_back_what_init_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Workspace, "write_config", full_disk)
    with pytest.raises(OSError, match="No space"):
        init_workspace(tmp_path / "new" / "ws")
    assert not (tmp_path / "new").exists()  # hone.db made and migrated, then removed
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("the user's")
    with pytest.raises(OSError, match="No space"):
        init_workspace(existing)
    assert files_of(existing) == {"notes.txt": b"the user's"}
