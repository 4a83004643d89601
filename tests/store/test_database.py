"""The metadata store: schema checks, unreachable stores, concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from hone.errors import StoreUnavailableError, ValidationError, WorkspaceError
from hone.store.database import Database
from hone.store.engine import parse_store_url
from hone.store.migrations import head_revision
from hone.store.schema import experiments


def test_unknown_backends_and_malformed_urls_are_rejected() -> None:
    with pytest.raises(ValidationError, match="not a database URL"):
        parse_store_url("not a url")
    with pytest.raises(ValidationError, match="not supported"):
        parse_store_url("mysql://u:secret@h/db")


def test_passwords_never_appear_in_messages() -> None:
    db = Database("postgresql://hone:s3cret@127.0.0.1:1/x")
    with pytest.raises(StoreUnavailableError) as info:
        db.check_schema()
    assert "s3cret" not in str(info.value) and "did not answer" in str(info.value)


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(WorkspaceError, match="hone init"):
        db.check_schema()
    assert not (tmp_path / "missing.db").exists()


def test_a_database_without_schema_asks_for_init(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(WorkspaceError, match="no hone schema"):
        Database(f"sqlite:///{path}").check_schema()


def test_a_schema_at_another_revision_asks_for_upgrade(store_url: str, tmp_path: Path) -> None:
    from hone.config import Workspace
    from hone.store.setup import upgrade_store

    (tmp_path / "ws").mkdir(exist_ok=True)
    upgrade_store(Workspace(tmp_path, store_url, tmp_path.as_uri()))
    db = Database(store_url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    try:
        with pytest.raises(
            WorkspaceError,
            match=f"at schema revision 0002, this hone needs "
            f"{head_revision()}; run `hone db upgrade`",
        ):
            db.check_schema()
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        newer = Database(store_url)
        with pytest.raises(WorkspaceError, match="a newer hone wrote it; upgrade hone"):
            newer.check_schema()
        newer.dispose()
    finally:
        with db.engine.begin() as conn:
            conn.execute(text(f"UPDATE alembic_version SET version_num = '{head_revision()}'"))
        db.dispose()


def test_concurrent_writers_all_commit(workspace_db: Database) -> None:
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(25):
                with workspace_db.write() as conn:
                    conn.execute(
                        experiments.insert().values(
                            id=f"{worker:016x}{i:016x}", name=f"w{worker}-{i}", created_at=0.0
                        )
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with workspace_db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM experiments")).scalar_one() == 150


@pytest.fixture
def workspace_db(workspace: object) -> Iterator[Database]:
    from hone.config import Workspace

    assert isinstance(workspace, Workspace)
    db = Database(workspace.store_uri)
    yield db
    db.dispose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql+psycopg://u@h/db?password=s3cret&sslmode=require",
            "postgresql+psycopg://u@h/db?password=***&sslmode=require",
        ),
        ("postgresql://h/db?sslpassword=k3y", "postgresql://h/db?sslpassword=***"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_shown_urls_hide_every_password(url: str, shown: str) -> None:
    from hone.store.engine import display_url

    assert display_url(url) == shown
