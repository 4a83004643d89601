"""Shared fixtures: a workspace per test on every store backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hone.config import Workspace
from hone.store.engine import parse_store_url
from hone.store.schema import metadata
from hone.store.setup import init_workspace
from hone.tracking.active import active_run
from hone.tracking.tracker import close_trackers

POSTGRES_ENV = "HONE_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]


def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} must be set in CI: PostgreSQL tests are never skipped")
        pytest.skip(f"set {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


def create_postgres_database() -> str:
    """A new, empty PostgreSQL database; returns its URL."""
    admin = parse_store_url(postgres_admin_url())
    name = f"hone_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    admin = parse_store_url(postgres_admin_url())
    name = parse_store_url(url).database
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that talks to PostgreSQL ``postgres`` (``-m "not postgres"`` runs
    the rest, e.g. on a machine without it)."""
    for item in items:
        params = getattr(item, "callspec", None)
        on_postgres = params is not None and params.params.get("store_url") == "postgresql"
        if on_postgres or "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One migrated PostgreSQL database for the session; tables are emptied per test."""
    url = create_postgres_database()
    ws_engine = create_engine(parse_store_url(url))
    from hone.store.migrations import upgrade

    upgrade(ws_engine)
    ws_engine.dispose()
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL for each backend, empty of data."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ws' / 'hone.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(parse_store_url(url))
    with engine.begin() as conn:
        names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
        conn.execute(text(f"TRUNCATE {names}"))
    engine.dispose()
    yield url


@pytest.fixture
def workspace(tmp_path: Path, store_url: str) -> Workspace:
    """An initialised workspace on each backend."""
    ws, _ = init_workspace(tmp_path / "ws", store_uri=store_url)
    return ws


@pytest.fixture
def sqlite_workspace(tmp_path: Path) -> Workspace:
    """An initialised workspace on the embedded default only (for process-level tests)."""
    ws, _ = init_workspace(tmp_path / "ws")
    return ws


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's HONE_* settings, a leftover active run or open engine."""
    for name in ("HONE_HOME", "HONE_STORE_URI", "HONE_BLOB_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    while (run := active_run()) is not None:
        run.end()
    close_trackers()
