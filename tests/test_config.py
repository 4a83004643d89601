"""Workspace resolution: argument, environment, hone.toml, defaults — and no side effects."""

from __future__ import annotations

from pathlib import Path

import pytest

from hone.config import Workspace
from hone.errors import WorkspaceError


def test_defaults_live_under_the_workspace(tmp_path: Path) -> None:
    ws = Workspace.discover(tmp_path / "ws")
    assert ws.store_uri == f"sqlite:///{tmp_path / 'ws' / 'hone.db'}"
    assert ws.blob_uri == (tmp_path / "ws" / "blobs").as_uri()
    assert ws.journal_dir == tmp_path / "ws" / "journals"
    assert not (tmp_path / "ws").exists()


def test_default_home_is_dot_hone_in_the_working_directory(tmp_path: Path) -> None:
    assert Workspace.discover().home == tmp_path / ".hone"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.discover(tmp_path / "ws")
    ws.write_config(store_uri="postgresql://db/from-toml", blob_uri="s3://bucket/toml")
    assert Workspace.discover(tmp_path / "ws").store_uri == "postgresql://db/from-toml"
    monkeypatch.setenv("HONE_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("HONE_STORE_URI", "postgresql://db/from-env")
    found = Workspace.discover()
    assert found.store_uri == "postgresql://db/from-env"
    assert found.blob_uri == "s3://bucket/toml"
    assert Workspace.discover(store_uri="sqlite:///arg.db").store_uri == "sqlite:///arg.db"


def test_a_broken_config_is_reported(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "hone.toml").write_text("[store\nuri = 1")
    with pytest.raises(WorkspaceError, match="cannot read"):
        Workspace.discover(tmp_path / "ws")
    (tmp_path / "ws" / "hone.toml").write_text("[store]\nuri = 5\n")
    with pytest.raises(WorkspaceError, match="must be a non-empty string"):
        Workspace.discover(tmp_path / "ws")


def test_require_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="run `hone init"):
        Workspace.discover(tmp_path / "none").require()
