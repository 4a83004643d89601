"""Datasets and versions in the store: create, resolve references, list."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from hone.errors import NotFoundError, UserError, ValidationError
from hone.ids import check_slug, new_id
from hone.store.database import Database
from hone.store.schema import dataset_versions, datasets
from hone.store.upsert import upsert

__all__ = [
    "DatasetInfo",
    "VersionRow",
    "check_dataset_name",
    "dataset_infos",
    "get_row",
    "insert_version",
    "list_versions",
    "parse_ref",
    "resolve",
]


@dataclass(frozen=True)
class VersionRow:
    id: str
    dataset: str
    created_at: float
    rows: int
    operation: str
    parents: tuple[str, ...]
    summary: dict[str, Any]
    source: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset": self.dataset,
            "ref": f"{self.dataset}@{self.id[:12]}",
            "created_at": self.created_at,
            "rows": self.rows,
            "operation": self.operation,
            "parents": list(self.parents),
            "source": self.source,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    versions: int
    latest: VersionRow


def check_dataset_name(name: str) -> str:
    return check_slug(name, "dataset")


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME``, ``NAME@latest`` → (NAME, None); ``NAME@PREFIX`` → (NAME, PREFIX)."""
    given: object = ref
    if not isinstance(given, str):
        raise ValidationError(f"{ref!r}: give a reference such as NAME@latest or NAME@3fa9c1")
    name, at, version = ref.partition("@")
    check_dataset_name(name)
    if not at or version in ("", "latest"):
        return name, None
    if not re.fullmatch(r"[0-9a-f]{1,64}", version):
        raise ValidationError(f"{ref!r}: a version is 'latest' or hex digits of its id")
    return name, version


def insert_version(db: Database, row: VersionRow) -> VersionRow:
    """Record a version (idempotent: the same content is the same version)."""
    with db.write() as conn:
        upsert(
            conn,
            datasets,
            [{"id": new_id(), "name": row.dataset, "created_at": row.created_at}],
            keys=["name"],
        )
        dataset_id = conn.execute(
            select(datasets.c.id).where(datasets.c.name == row.dataset)
        ).scalar_one()
        upsert(
            conn,
            dataset_versions,
            [
                {
                    "id": row.id,
                    "dataset_id": dataset_id,
                    "created_at": row.created_at,
                    "rows": row.rows,
                    "operation": row.operation,
                    "parents": json.dumps(list(row.parents)),
                    "summary": json.dumps(row.summary),  # not hashed: keeps the columns' order
                    "source": row.source,
                }
            ],
            keys=["id"],
        )
    return _get(db, row.id)


def resolve(db: Database, ref: str) -> VersionRow:
    name, prefix = parse_ref(ref)
    query = _versions_query().where(datasets.c.name == name)
    with db.read() as conn:
        if prefix is None:
            found = conn.execute(
                query.order_by(dataset_versions.c.created_at.desc(), dataset_versions.c.id).limit(1)
            ).all()
        else:
            found = conn.execute(
                query.where(dataset_versions.c.id.startswith(prefix)).limit(6)
            ).all()
        if not found:
            known = conn.execute(
                select(func.count()).select_from(datasets).where(datasets.c.name == name)
            ).scalar_one()
    if not found:
        if not known:
            raise NotFoundError(f"no dataset {name!r}; `hone data list` shows the datasets")
        raise NotFoundError(f"dataset {name!r} has no version {prefix!r}")
    if len(found) > 1:
        ids = ", ".join(r.id[:12] for r in found[:5])
        raise UserError(f"{ref!r} is ambiguous: it matches versions {ids}; give more digits")
    return _row(found[0])


def dataset_infos(db: Database) -> list[DatasetInfo]:
    """Every dataset with its number of versions and its newest, in one query."""
    per = (
        select(
            dataset_versions.c.dataset_id,
            func.count().label("versions"),
            func.max(dataset_versions.c.created_at).label("newest"),
        )
        .group_by(dataset_versions.c.dataset_id)
        .subquery()
    )
    query = (
        _versions_query()
        .add_columns(per.c.versions)
        .join(
            per,
            (per.c.dataset_id == dataset_versions.c.dataset_id)
            & (per.c.newest == dataset_versions.c.created_at),
        )
        .order_by(datasets.c.name, dataset_versions.c.id)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    infos: dict[str, DatasetInfo] = {}
    for r in rows:  # versions made in the same instant: the smallest id, as resolve() picks
        infos.setdefault(r.dataset_name, DatasetInfo(r.dataset_name, int(r.versions), _row(r)))
    return list(infos.values())


def list_versions(db: Database, name: str) -> list[VersionRow]:
    check_dataset_name(name)
    with db.read() as conn:
        rows = conn.execute(
            _versions_query()
            .where(datasets.c.name == name)
            .order_by(dataset_versions.c.created_at, dataset_versions.c.id)
        ).all()
    if not rows:
        raise NotFoundError(f"no dataset {name!r}; `hone data list` shows the datasets")
    return [_row(r) for r in rows]


def _versions_query() -> Any:
    return select(dataset_versions, datasets.c.name.label("dataset_name")).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )


def _get(db: Database, version_id: str) -> VersionRow:
    with db.read() as conn:
        return _row(
            conn.execute(_versions_query().where(dataset_versions.c.id == version_id)).one()
        )


def get_row(db: Database, version_id: str) -> VersionRow | None:
    """The version with exactly this id, if it is recorded."""
    with db.read() as conn:
        found = conn.execute(_versions_query().where(dataset_versions.c.id == version_id)).first()
    return _row(found) if found is not None else None


def _row(r: Any) -> VersionRow:
    return VersionRow(
        id=r.id,
        dataset=r.dataset_name,
        created_at=r.created_at,
        rows=r.rows,
        operation=r.operation,
        parents=tuple(json.loads(r.parents)),
        summary=json.loads(r.summary),
        source=r.source,
    )


def now() -> float:
    return time.time()
