"""One filter corpus, run on SQLite and on PostgreSQL: both must find exactly the runs the
cases in filter_cases.py name, so the two backends answer alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import update

import hone
from hone.config import Workspace
from hone.store.database import dispose_databases
from hone.store.schema import run_inputs, runs
from hone.store.setup import init_workspace
from hone.tracking.filter import MAX_CLAUSES, MAX_DEPTH, MAX_PATTERN_CHARS, MAX_VALUES
from hone.tracking.tracker import close_trackers, get_tracker
from tests.conftest import (
    BACKENDS,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)
from tests.tracking.filter_cases import ALL, CASES, ORDERS, RUNS, like_cases


@dataclass(frozen=True)
class Corpus:
    workspace: Workspace
    ids: dict[str, str]  # run name -> id

    def names(self, filter: str) -> set[str]:
        text = filter.format(**self.ids) if "{" in filter else filter
        return {r.name for r in hone.search_runs(filter=text, workspace=self.workspace)}


def _record(ws: Workspace) -> dict[str, str]:
    """The corpus's runs, logged through the write path; then the attributes a run takes
    from the clock and the machine are set to fixed values."""
    ids = {}
    for spec in RUNS:
        with hone.start_run(
            spec.experiment,
            name=spec.name,
            params={**spec.params, "s": spec.name},
            tags={**spec.tags, "s": spec.name},
            workspace=ws,
        ) as run:
            for key, value in spec.metrics.items():
                run.log_metric(key, 0.0, step=0)  # an early value the latest replaces
                run.log_metric(key, value, step=5)
        ids[spec.name] = run.id
    with get_tracker(ws).db.write() as conn:
        for spec in RUNS:
            conn.execute(
                update(runs)
                .where(runs.c.id == ids[spec.name])
                .values(
                    status=spec.status,
                    start_time=spec.start,
                    end_time=spec.end,
                    host=spec.host,
                    user=spec.user,
                    git_commit=spec.git_commit,
                    parent_run_id=ids[spec.parent] if spec.parent else None,
                )
            )
            for dataset, version, split in spec.inputs:
                conn.execute(
                    run_inputs.insert().values(
                        run_id=ids[spec.name], version_id=version, split=split, dataset=dataset
                    )
                )
    return ids


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Corpus]:
    """The corpus's runs in a store of each backend, built once per module."""
    url = None if request.param == "sqlite" else create_postgres_database()
    ws, _ = init_workspace(tmp_path_factory.mktemp("corpus") / "ws", store_uri=url)
    ids = _record(ws)
    close_trackers()
    yield Corpus(ws, ids)
    close_trackers()
    if url is not None:
        dispose_databases()
        drop_postgres_database(url)


def _case_id(case: tuple[str, set[str]]) -> str:
    return case[0] if len(case[0]) < 80 else case[0][:77] + "..."


@pytest.mark.parametrize("case", CASES + like_cases(), ids=_case_id)
def test_filter_finds_the_same_runs_on_every_backend(
    corpus: Corpus, case: tuple[str, set[str]]
) -> None:
    filter, expected = case
    assert corpus.names(filter) == expected


@pytest.mark.parametrize(("order_by", "expected"), ORDERS, ids=str)
def test_order_is_the_same_on_every_backend(
    corpus: Corpus, order_by: list[str] | str, expected: list[str]
) -> None:
    found = hone.search_runs(order_by=order_by, workspace=corpus.workspace)
    assert [r.name for r in found] == expected


def test_filters_at_every_bound_still_answer(corpus: Corpus) -> None:
    """Each documented bound, reached exactly, is a filter both stores run."""
    chain = " or ".join([f"name = 'x{i}'" for i in range(MAX_CLAUSES - 1)] + ["name = 'Alpha'"])
    assert corpus.names(chain) == {"Alpha"}
    values = ", ".join([f"'x{i}'" for i in range(MAX_VALUES - 1)] + ["'alpha'"])
    assert corpus.names(f"name in ({values})") == {"alpha"}
    nested = "(name = 'Alpha' or " * (MAX_DEPTH - 1) + "(name = 'café')" + ")" * (MAX_DEPTH - 1)
    assert corpus.names(nested) == {"Alpha", "café"}
    pattern = "A" + "%" * (MAX_PATTERN_CHARS - 1)
    assert corpus.names(f"name like '{pattern}'") == {"Alpha", "ALPHA_2"}
    assert corpus.names(f"params.s ilike '{pattern}'") == {"Alpha", "alpha", "ALPHA_2", "alphaX2"}
    longest = "🚀" * MAX_PATTERN_CHARS  # 4 bytes a character: the longest pattern in bytes
    assert corpus.names(f"tags.emoji like '{longest}'") == set()
    assert corpus.names(f"tags.s like '{'*' * MAX_PATTERN_CHARS}'") == set()  # [*] each


def test_a_chain_of_nots_is_not_a_recursion(corpus: Corpus) -> None:
    assert corpus.names("not " * 2000 + "status = 'killed'") == {"alphaX2"}
    assert corpus.names("not " * 2001 + "status = 'killed'") == ALL - {"alphaX2"}


def test_text_sorts_by_code_point_whatever_the_database_locale(tmp_path: Path) -> None:
    """A PostgreSQL database with an ICU English collation sorts 'a' before 'B'; hone's
    order must still be SQLite's (code points), and ilike must still fold A-Z only."""
    import uuid

    from sqlalchemy import create_engine, text

    from hone.store.engine import parse_store_url

    admin = parse_store_url(postgres_admin_url())
    name = f"hone_test_icu_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(
            text(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        )
    engine.dispose()
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        ws, _ = init_workspace(tmp_path / "ws", store_uri=url)
        for run_name in ("B", "a", "é", "É", "C"):
            with hone.start_run("icu", name=run_name, workspace=ws):
                pass
        found = hone.search_runs(order_by=["name"], workspace=ws)
        assert [r.name for r in found] == ["B", "C", "a", "É", "é"]
        found = hone.search_runs(filter="name ilike 'é'", workspace=ws)
        assert [r.name for r in found] == ["é"]
    finally:
        close_trackers()
        dispose_databases()
        drop_postgres_database(url)
