"""Fixtures of the tuning tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hone.config import Workspace
from tests.tune.helpers import QUALITY


@pytest.fixture
def home(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace on each backend, which every command finds through HONE_HOME."""
    monkeypatch.setenv("HONE_HOME", str(workspace.home))
    return workspace


@pytest.fixture
def quality(tmp_path: Path) -> str:
    """QUALITY as a recipe file: its reference."""
    path = tmp_path / "quality.py"
    path.write_text(QUALITY)
    return f"{path}:Quality"
