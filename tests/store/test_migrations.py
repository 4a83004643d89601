"""Migrations: run only on request, match the model, and upgrade old workspaces in place."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, create_engine, text

import hone
from hone.config import Workspace
from hone.errors import WorkspaceError
from hone.store.database import Database
from hone.store.engine import parse_store_url
from hone.store.migrations import head_revision
from hone.store.schema import metadata
from hone.store.setup import init_workspace, upgrade_store
from tests.conftest import create_postgres_database, drop_postgres_database

ASSETS = Path(__file__).parent / "assets"
SQLITE_ASSETS = sorted(ASSETS.glob("hone-*.sqlite"))
POSTGRESQL_ASSETS = sorted(ASSETS.glob("hone-*.postgresql.sql"))


def test_migrations_build_exactly_the_model(workspace: Workspace) -> None:
    """Alembic cannot reflect expression indexes on every backend: those are compared by
    their definitions in the database's catalog instead."""
    db = Database(workspace.store_uri)
    expression_indexes = {
        str(ix.name)
        for table in metadata.tables.values()
        for ix in table.indexes
        if any(not isinstance(e, Column) for e in ix.expressions)
    }
    with db.engine.connect() as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert [d for d in diff if _index_name(d) not in expression_indexes] == []
        catalog = (
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
            if db.backend == "sqlite"
            else "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        )
        for name in expression_indexes:
            definition = conn.execute(text(catalog), {"name": name}).scalar_one()
            assert "substr" in definition.lower() and "100" in definition
    db.dispose()


def _index_name(diff: object) -> str | None:
    item = diff[1] if isinstance(diff, tuple) and len(diff) > 1 else None
    return getattr(item, "name", None)


def test_init_is_idempotent(tmp_path: Path) -> None:
    ws, first = init_workspace(tmp_path / "ws")
    assert first.before is None and first.after == head_revision()
    again, second = init_workspace(tmp_path / "ws")
    assert again == ws and not second.changed
    assert (ws.home / "hone.toml").is_file()


def _revision_of(asset: Path) -> str:
    return asset.name.removeprefix("hone-").split(".")[0]


def _reads_back_after_upgrade(ws: Workspace, revision: str) -> None:
    """Upgrade an asset's store to head and read its content back (make_asset.py wrote it)."""
    result = upgrade_store(ws)
    assert result.before == revision and result.after == head_revision()
    (run,) = hone.search_runs(workspace=ws)
    assert run.name == "from-an-older-hone" and run.params == {"lr": "0.01"}
    assert run.metrics["loss"].value == 0.25
    if revision >= "0002":  # datasets exist from 0002 on
        (info,) = hone.data.list_datasets(workspace=ws)
        assert info.name == "legacy" and info.latest.rows == 150


def test_there_is_an_asset_per_backend_for_each_older_revision() -> None:
    assert SQLITE_ASSETS, "keep one database per schema revision in tests/store/assets"
    assert POSTGRESQL_ASSETS, "keep a PostgreSQL dump of an older revision in tests/store/assets"
    assert {_revision_of(a) for a in POSTGRESQL_ASSETS} <= {_revision_of(a) for a in SQLITE_ASSETS}


@pytest.mark.parametrize("asset", SQLITE_ASSETS, ids=lambda a: a.name)
def test_sqlite_workspaces_from_older_releases_upgrade_in_place(
    tmp_path: Path, asset: Path
) -> None:
    """Each asset is a workspace database written by an older hone."""
    home = tmp_path / asset.stem
    home.mkdir()
    shutil.copy(asset, home / "hone.db")
    ws = Workspace.discover(home)
    ws.write_config(store_uri=None, blob_uri=None)
    _reads_back_after_upgrade(ws, _revision_of(asset))


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


def _load_dump(url: str, dump: Path) -> None:
    engine = create_engine(parse_store_url(url))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(dump.read_text(encoding="utf-8"))  # many statements, no parameters
        cursor.close()
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


@pytest.mark.parametrize("asset", POSTGRESQL_ASSETS, ids=lambda a: a.name)
def test_postgresql_stores_from_older_releases_upgrade_in_place(
    tmp_path: Path, asset: Path, fresh_postgres: str
) -> None:
    """Each asset is a dump of a PostgreSQL store written by an older hone."""
    _load_dump(fresh_postgres, asset)
    home = tmp_path / asset.stem
    home.mkdir()
    ws = Workspace.discover(home, store_uri=fresh_postgres)
    ws.write_config(store_uri=fresh_postgres, blob_uri=None)
    _reads_back_after_upgrade(ws, _revision_of(asset))


def test_a_store_from_a_newer_hone_is_refused_and_left_alone(workspace: Workspace) -> None:
    """`hone db upgrade` on an unknown revision (9999): a newer hone wrote it."""
    engine = create_engine(parse_store_url(workspace.store_uri))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        with pytest.raises(WorkspaceError, match=r"'9999'.* a newer hone wrote it"):
            upgrade_store(workspace)
        with pytest.raises(WorkspaceError, match="a newer hone wrote it"):
            init_workspace(workspace.home)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                ("9999",)
            ]
    finally:
        with engine.begin() as conn:  # the PostgreSQL store is shared by the session's tests
            reset = text("UPDATE alembic_version SET version_num = :v")
            conn.execute(reset, {"v": head_revision()})
        engine.dispose()


def test_init_with_a_new_store_records_it(tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws", blob_uri="memory://kept")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    init_workspace(tmp_path / "ws", store_uri=other)
    again = Workspace.discover(tmp_path / "ws")
    assert again.store_uri == other and again.blob_uri == "memory://kept"
