"""Migrations: run only on request, match the model, and upgrade old workspaces in place."""

from __future__ import annotations

import shutil
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import hone
from hone.config import Workspace
from hone.store.database import Database
from hone.store.migrations import head_revision
from hone.store.schema import metadata
from hone.store.setup import init_workspace, upgrade_store

ASSETS = Path(__file__).parent / "assets"


def test_migrations_build_exactly_the_model(workspace: Workspace) -> None:
    db = Database(workspace.store_uri)
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    db.dispose()


def test_init_is_idempotent(tmp_path: Path) -> None:
    ws, first = init_workspace(tmp_path / "ws")
    assert first.before is None and first.after == head_revision()
    again, second = init_workspace(tmp_path / "ws")
    assert again == ws and not second.changed
    assert (ws.home / "hone.toml").is_file()


def test_workspaces_from_every_older_release_upgrade_in_place(tmp_path: Path) -> None:
    """Each asset is a workspace database written by an older hone, holding one run."""
    assets = sorted(ASSETS.glob("hone-*.sqlite"))
    assert assets, "keep one database per schema revision in tests/store/assets"
    for asset in assets:
        home = tmp_path / asset.stem
        home.mkdir()
        shutil.copy(asset, home / "hone.db")
        ws = Workspace.discover(home)
        ws.write_config(store_uri=None, blob_uri=None)
        result = upgrade_store(ws)
        assert result.after == head_revision()
        (run,) = hone.search_runs(workspace=ws)
        assert run.name == "from-an-older-hone" and run.params == {"lr": "0.01"}
        assert run.metrics["loss"].value == 0.25
        if asset.stem >= "hone-0002":  # datasets exist from 0002 on
            (info,) = hone.data.list_datasets(workspace=ws)
            assert info.name == "legacy" and info.latest.rows == 150


def test_init_with_a_new_store_records_it(tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws", blob_uri="memory://kept")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    init_workspace(tmp_path / "ws", store_uri=other)
    again = Workspace.discover(tmp_path / "ws")
    assert again.store_uri == other and again.blob_uri == "memory://kept"
