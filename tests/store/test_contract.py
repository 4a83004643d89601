"""The metadata store's written contract (``hone.store``), exercised on every backend
(issue 6, fault 17): transactions, concurrent writers, idempotent and ordered writes,
first-writer-wins params, and what each kind of failure raises."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from hone.errors import (
    DiskFullError,
    HoneError,
    RejectedError,
    StoreUnavailableError,
    WorkspaceError,
)
from hone.store.database import Database
from hone.store.schema import experiments, tags
from hone.store.setup import init_workspace
from hone.store.upsert import upsert
from hone.tracking.batch import Batch
from hone.tracking.points import Points
from hone.tracking.sink import StoreSink

RUN = "a" * 32


@pytest.fixture
def db(store_url: str, tmp_path: Path) -> Iterator[Database]:
    init_workspace(tmp_path / "ws", store_uri=store_url)
    database = Database(store_url)
    yield database
    database.dispose()


def _experiment_names(db: Database) -> list[str]:
    with db.read() as conn:
        return sorted(conn.execute(select(experiments.c.name)).scalars())


def test_a_write_commits_on_a_clean_exit_and_rolls_back_otherwise(db: Database) -> None:
    with db.write() as conn:
        upsert(conn, experiments, [{"id": "1" * 32, "name": "kept", "created_at": 0.0}], ["id"])
    with pytest.raises(RuntimeError), db.write() as conn:
        upsert(conn, experiments, [{"id": "2" * 32, "name": "gone", "created_at": 0.0}], ["id"])
        raise RuntimeError("the caller failed mid-transaction")
    assert _experiment_names(db) == ["kept"]


def test_concurrent_writers_all_commit(db: Database) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(20):
                with db.write() as conn:
                    row = {"id": f"{n:02d}{i:030d}", "name": f"e{n}-{i}", "created_at": 0.0}
                    upsert(conn, experiments, [row], ["id"])
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(_experiment_names(db)) == 6 * 20


def test_ordered_upserts_keep_the_newest_write_in_any_order(db: Database) -> None:
    rows = [
        {"run_id": RUN, "key": "t", "value": "new", "updated_at": 2.0},
        {"run_id": RUN, "key": "t", "value": "old", "updated_at": 1.0},
        {"run_id": RUN, "key": "t", "value": "tie, applied later", "updated_at": 2.0},
    ]
    for row in rows:
        with db.write() as conn:
            upsert(conn, tags, [row], ["run_id", "key"], ["value", "updated_at"], "updated_at")
    with db.read() as conn:
        assert conn.execute(select(tags.c.value)).scalar_one() == "tie, applied later"


def test_batches_are_idempotent_and_params_first_writer_wins(db: Database) -> None:
    sink = StoreSink(db)
    start = {
        "run_id": RUN,
        "experiment": "contract",
        "name": "r",
        "time": 1.0,
    }
    batch = Batch(RUN, starts=[start], params={"seed": "1"}, tags={"t": ("v", 1.0)})
    batch.metrics["loss"] = Points()
    batch.metrics["loss"].append(0, 0.5, 1.0)
    batch.metrics["loss"].append(1, float("nan"), 2.0)
    assert sink.apply(batch) == []
    assert sink.apply(batch) == []  # a replay changes nothing and refuses nothing
    refused = sink.apply(Batch(RUN, params={"seed": "2"}))
    assert [q.kind for q in refused] == ["params"] and "already '1'" in refused[0].reason
    with db.read() as conn:
        counts = {
            name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in ("runs", "params", "tags", "metrics", "latest_metrics", "quarantine")
        }
        seed = conn.execute(text("SELECT value FROM params")).scalar_one()
    assert counts == {
        "runs": 1,
        "params": 1,
        "tags": 1,
        "metrics": 2,
        "latest_metrics": 1,
        "quarantine": 1,
    }
    assert seed == "1"


def test_a_value_no_backend_can_hold_is_a_rejected_error(db: Database) -> None:
    with pytest.raises(RejectedError), db.write() as conn:
        row = {"id": "3" * 32, "name": "caf\udce9", "created_at": 0.0}
        upsert(conn, experiments, [row], ["id"])
    assert _experiment_names(db) == []


def test_a_query_too_deep_for_the_store_is_a_rejected_error(db: Database) -> None:
    deep = "(" * 10_000 + "1 = 1" + ")" * 10_000  # past both parsers' nesting limits
    with pytest.raises(RejectedError, match="refused"), db.read() as conn:
        conn.execute(text(f"SELECT count(*) FROM experiments WHERE {deep}"))


def test_an_unreachable_store_is_unavailable_not_a_traceback() -> None:
    db = Database("postgresql://hone@127.0.0.1:1/nowhere")
    with pytest.raises(StoreUnavailableError, match="did not answer"), db.read():
        pass


def test_a_damaged_sqlite_file_is_a_workspace_error(tmp_path: Path) -> None:
    path = tmp_path / "hone.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(WorkspaceError, match="damaged or not a hone database"):
        Database(f"sqlite:///{path}").check_schema()


def test_a_full_sqlite_database_is_a_disk_full_error(tmp_path: Path) -> None:
    ws, _ = init_workspace(tmp_path / "full")
    db = Database(ws.store_uri)
    with db.write() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    # Cap the file at its size now: the next pages cannot be had, as on a full disk.
    with pytest.raises(DiskFullError, match="full"), db.write() as conn:
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
        rows = [
            {"id": f"{i:032d}", "name": "x" * 200 + str(i), "created_at": 0.0} for i in range(5000)
        ]
        upsert(conn, experiments, rows, ["id"])
    db.dispose()


def test_no_driver_exception_escapes_a_transaction(db: Database) -> None:
    with pytest.raises(HoneError), db.read() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
