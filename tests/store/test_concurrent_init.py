"""Several ``hone init`` at once on one store all succeed (issue 6, fault 16): migrations are
serialized by a PostgreSQL advisory lock, or SQLite's write lock, so the tables are created
once and every other init finds them current. Real processes, started together."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hone.errors import StoreUnavailableError
from hone.store import migrations
from hone.store.engine import parse_store_url
from hone.store.migrations import MIGRATION_LOCK_ID, head_revision
from hone.store.setup import init_workspace
from tests.conftest import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.slow
PROCESSES = 4
# Each child imports hone, says it is ready, then waits for the go file: the inits overlap.
CHILD = """
import os, sys, time
from hone.cli.main import main
ready, go = sys.argv[1:3]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
sys.exit(main(sys.argv[3:]))
"""


def init_together(folder: Path, argvs: list[list[str]]) -> list[tuple[int, str]]:
    """Run ``hone ARGV`` for each argv in its own process, all at the same moment."""
    folder.mkdir(parents=True, exist_ok=True)
    go = folder / "go"
    ready = [folder / f"ready-{i}" for i in range(len(argvs))]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(flag), str(go), *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag, argv in zip(ready, argvs, strict=True)
    ]
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    results = []
    for child in children:
        _, err = child.communicate(timeout=120)
        results.append((child.returncode, err))
    return results


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


def revisions(url: str) -> list[str]:
    engine = create_engine(parse_store_url(url))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    return list(rows)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_concurrent_inits_of_folders_sharing_one_store_all_succeed(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        url = request.getfixturevalue("fresh_postgres")
    else:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    argvs = [["init", str(tmp_path / f"ws{i}"), "--store-uri", url] for i in range(PROCESSES)]
    results = init_together(tmp_path / "flags", argvs)
    assert [code for code, _ in results] == [0] * PROCESSES, results
    assert revisions(url) == [head_revision()]
    assert all((tmp_path / f"ws{i}" / "hone.toml").is_file() for i in range(PROCESSES))


def test_concurrent_inits_of_one_new_folder_all_succeed(
    tmp_path: Path, fresh_postgres: str
) -> None:
    for store in ("sqlite", "postgresql"):
        home = tmp_path / store / "ws"
        extra = ["--store-uri", fresh_postgres] if store == "postgresql" else []
        argv = ["init", str(home), *extra]
        results = init_together(tmp_path / store / "flags", [argv] * PROCESSES)
        assert [code for code, _ in results] == [0] * PROCESSES, results
        url = fresh_postgres if store == "postgresql" else f"sqlite:///{home / 'hone.db'}"
        assert revisions(url) == [head_revision()]
        assert sorted(p.name for p in home.iterdir()) == (
            ["hone.db", "hone.toml"] if store == "sqlite" else ["hone.toml"]
        )


def test_an_init_waits_for_a_migration_in_progress_then_gives_up_cleanly(
    tmp_path: Path, fresh_postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "MIGRATION_LOCK_TIMEOUT_S", 0.5)
    holder = create_engine(parse_store_url(fresh_postgres))
    with holder.connect() as conn, conn.begin():  # another hone, mid-migration
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="another process has been migrating"):
            init_workspace(tmp_path / "ws", store_uri=fresh_postgres)
        assert time.monotonic() - started >= 0.5
    holder.dispose()
    assert not (tmp_path / "ws").exists()
    _, result = init_workspace(tmp_path / "ws", store_uri=fresh_postgres)  # lock released
    assert result.after == head_revision()
