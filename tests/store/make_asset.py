"""Write the upgrade test's assets for this hone's schema revision (run by hand once per new
revision, so that every older schema stays covered by the upgrade test):

- ``assets/hone-<revision>.sqlite``: the workspace database file;
- ``assets/hone-<revision>.postgresql.sql``: a plain SQL dump (``pg_dump``) of a PostgreSQL
  store, loaded by the test into a fresh database.

Both hold the same content: one run "from-an-older-hone" (param lr=0.01, metric loss=0.25)
and, from revision 0002, one dataset "legacy" of 150 rows (its blobs are not kept: the
upgrade test reads metadata only). Usage, with ``pg_dump`` on PATH::

    HONE_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python -m tests.store.make_asset [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import hone
from hone.config import Workspace
from hone.store.engine import parse_store_url
from hone.store.migrations import head_revision
from hone.tracking.tracker import close_trackers
from tests.conftest import create_postgres_database, drop_postgres_database

ASSETS = Path(__file__).parent / "assets"
# psql meta-commands (pg_dump writes \restrict / \unrestrict since 15.14, 16.10, 17.6) and
# settings that older servers do not know are left out: the test loads the dump through a
# driver, into whatever PostgreSQL CI runs.
_DROPPED_PREFIXES = ("\\", "--", "SET default_table_access_method", "SET transaction_timeout")


def fill(ws: Workspace) -> None:
    with hone.start_run(
        "legacy", name="from-an-older-hone", params={"lr": 0.01}, workspace=ws
    ) as run:
        run.log_metric("loss", 0.25)
    if head_revision() >= "0002":
        hone.data.import_dataset("legacy", "sklearn:iris", workspace=ws)
    close_trackers()


def sqlite_asset(tmp: Path) -> Path:
    ws = hone.init(tmp / "sqlite")
    fill(ws)
    target = ASSETS / f"hone-{head_revision()}.sqlite"
    shutil.copy(ws.home / "hone.db", target)
    return target


def postgresql_asset(tmp: Path) -> Path:
    url = create_postgres_database()
    try:
        fill(hone.init(tmp / "postgresql", store_uri=url))
        libpq_url = parse_store_url(url).set(drivername="postgresql")
        dbname = libpq_url.render_as_string(hide_password=False)
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", "--column-inserts", "--dbname", dbname],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        drop_postgres_database(url)
    kept = [line for line in dump.splitlines() if not line.startswith(_DROPPED_PREFIXES)]
    header = (
        f"-- A hone store at schema revision {head_revision()}, dumped by "
        "tests/store/make_asset.py (pg_dump); the upgrade test loads it into a new database."
    )
    body = "\n".join(kept).strip()
    while "\n\n\n" in body:
        body = body.replace("\n\n\n", "\n\n")
    target = ASSETS / f"hone-{head_revision()}.postgresql.sql"
    target.write_text(f"{header}\n\n{body}\n", encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the upgrade test's assets.")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    backends = parser.parse_args().backend or ["sqlite", "postgresql"]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            make = sqlite_asset if backend == "sqlite" else postgresql_asset
            print(f"wrote {make(Path(tmp))}")


if __name__ == "__main__":
    main()
