"""Registered models and their versions in the store: numbered from 1 per model, never
changed once written, never numbered twice; resolved from ``NAME@N``, ``NAME@ALIAS`` or
``NAME@latest``. Writes to one model take turns (its lock), on any number of machines."""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from sqlalchemy import Connection, delete, func, insert, select, text, update

from hone.errors import ConflictError, NotFoundError, ValidationError
from hone.registry.refs import ModelRef, check_model_name
from hone.store.database import Database
from hone.store.schema import (
    checkpoints,
    model_aliases,
    model_exports,
    model_versions,
    registered_models,
)

__all__ = [
    "ModelInfo",
    "ModelVersion",
    "delete_version",
    "get_version",
    "insert_version",
    "list_models",
    "list_versions",
    "lock_model",
    "who",
]


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    run_id: str
    step: int  # the checkpoint's optimizer step
    weights: str  # the checkpoint's safetensors blob
    dataset_version: str  # the id of the version it trained on
    body: dict[str, Any]  # recipe, params, signature, preprocessing, metrics, commit, ...
    created_at: float
    created_by: str
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def signature(self) -> dict[str, Any]:
        return dict(self.body.get("signature") or {})

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.body.get("metrics") or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "dataset_version": self.dataset_version,
            "created_at": self.created_at,
            "created_by": self.created_by,
            **self.body,
            "checkpoint": {
                **(self.body.get("checkpoint") or {}),
                "step": self.step,
                "weights": self.weights,
            },
        }


@dataclass(frozen=True)
class ModelInfo:
    name: str
    created_at: float
    versions: int  # how many exist now
    latest: int | None
    aliases: dict[str, int] = field(default_factory=dict)


def who() -> str:
    """user@host, as the audit trail names whoever moved an alias."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:250]


def lock_model(conn: Connection, db: Database, name: str) -> None:
    """Take the model's lock for this write transaction: SQLite's write transactions are
    exclusive already; on PostgreSQL an advisory lock keyed by the name."""
    if db.backend == "postgresql":
        digest = hashlib.sha256(f"hone.model:{name}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def insert_version(
    db: Database,
    name: str,
    *,
    run_id: str,
    step: int,
    weights: str,
    dataset_version: str,
    body: Mapping[str, Any],
    exports: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> ModelVersion:
    """Record a new version of ``name`` (the model is created with its first version), with
    the exported files already stored as blobs; the next number is taken in the same
    transaction. The checkpoint must still be recorded: its blob is then kept for the
    version (retention and deletion read this table before they delete a blob)."""
    check_model_name(name)
    encoded = json.dumps(dict(body), sort_keys=True, allow_nan=False)
    now = time.time()
    by = who()
    with db.write() as conn:
        lock_model(conn, db, name)
        if db.backend == "postgresql":  # against retention deleting the blob meanwhile
            conn.exec_driver_sql("LOCK TABLE checkpoints IN SHARE ROW EXCLUSIVE MODE")
        kept = conn.execute(
            select(func.count())
            .select_from(checkpoints)
            .where(
                checkpoints.c.run_id == run_id,
                checkpoints.c.step == step,
                checkpoints.c.weights == weights,
            )
        ).scalar_one()
        if not kept:
            raise ConflictError(
                f"run {run_id}'s checkpoint at step {step} was deleted meanwhile (retention "
                "keeps a run's last and best ones): register another checkpoint"
            )
        last = conn.execute(
            select(registered_models.c.last_version).where(registered_models.c.name == name)
        ).scalar_one_or_none()
        if last is None:
            conn.execute(
                insert(registered_models).values(name=name, created_at=now, last_version=0)
            )
            last = 0
        number = int(last) + 1
        conn.execute(
            update(registered_models)
            .where(registered_models.c.name == name)
            .values(last_version=number)
        )
        conn.execute(
            insert(model_versions).values(
                model=name,
                version=number,
                run_id=run_id,
                step=step,
                weights=weights,
                dataset_version=dataset_version,
                body=encoded,
                created_at=now,
                created_by=by,
            )
        )
        for exported in exports:
            conn.execute(
                insert(model_exports).values(
                    model=name,
                    version=number,
                    format=exported["format"],
                    digest=exported["digest"],
                    size=exported["size"],
                    body=json.dumps(exported["body"], sort_keys=True, allow_nan=False),
                    created_at=now,
                )
            )
    return ModelVersion(name, number, run_id, step, weights, dataset_version, dict(body), now, by)


def get_version(db: Database, ref: ModelRef) -> ModelVersion:
    """The version ``ref`` names; NotFoundError saying what there is instead."""
    with db.read() as conn:
        return _get(conn, db, ref)


def _get(conn: Connection, db: Database, ref: ModelRef) -> ModelVersion:
    name = ref.name
    query = select(model_versions).where(model_versions.c.model == name)
    if ref.version is not None:
        query = query.where(model_versions.c.version == ref.version)
    elif ref.alias is not None:
        target = conn.execute(
            select(model_aliases.c.version).where(
                model_aliases.c.model == name, model_aliases.c.alias == ref.alias
            )
        ).scalar_one_or_none()
        if target is None:
            _missing(conn, db, ref)
        query = query.where(model_versions.c.version == target)
    else:
        query = query.order_by(model_versions.c.version.desc()).limit(1)
    row = conn.execute(query).mappings().first()
    if row is None:
        _missing(conn, db, ref)
    return _version(row, _aliases(conn, name).get(int(row["version"]), ()))


def require_model(conn: Connection, db: Database, name: str) -> None:
    """NotFoundError unless model ``name`` is registered."""
    known = conn.execute(
        select(registered_models.c.name).where(registered_models.c.name == name)
    ).scalar_one_or_none()
    if known is None:
        raise NotFoundError(
            f"no model {name!r} in {db.display_url()}; `hone models list` shows the models"
        )


def _missing(conn: Connection, db: Database, ref: ModelRef) -> NoReturn:
    name = ref.name
    require_model(conn, db, name)
    numbers = list(
        conn.execute(
            select(model_versions.c.version)
            .where(model_versions.c.model == name)
            .order_by(model_versions.c.version)
        ).scalars()
    )
    if ref.alias is not None:
        aliases = sorted(
            conn.execute(select(model_aliases.c.alias).where(model_aliases.c.model == name))
            .scalars()
            .all()
        )
        raise NotFoundError(
            f"model {name!r} has no alias {ref.alias!r}; "
            + (f"its aliases: {', '.join(aliases)}" if aliases else "it has no aliases yet")
        )
    if not numbers:
        raise NotFoundError(f"model {name!r} has no versions (every version was deleted)")
    raise NotFoundError(
        f"model {name!r} has no version {ref.version}; its versions: {_numbers(numbers)}"
    )


def _numbers(numbers: list[int]) -> str:
    """1-4, 7 for [1, 2, 3, 4, 7]."""
    spans: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(spans)


def _aliases(conn: Connection, name: str) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for alias, version in conn.execute(
        select(model_aliases.c.alias, model_aliases.c.version)
        .where(model_aliases.c.model == name)
        .order_by(model_aliases.c.alias)
    ):
        found.setdefault(int(version), []).append(alias)
    return {v: tuple(a) for v, a in found.items()}


def _version(row: Any, aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        model=row["model"],
        version=int(row["version"]),
        run_id=row["run_id"],
        step=int(row["step"]),
        weights=row["weights"],
        dataset_version=row["dataset_version"],
        body=json.loads(row["body"]),
        created_at=float(row["created_at"]),
        created_by=row["created_by"],
        aliases=aliases,
    )


def list_versions(db: Database, name: str) -> list[ModelVersion]:
    """A model's versions, oldest first."""
    check_model_name(name)
    with db.read() as conn:
        rows = conn.execute(
            select(model_versions)
            .where(model_versions.c.model == name)
            .order_by(model_versions.c.version)
        ).mappings()
        aliases = _aliases(conn, name)
        found = [_version(row, aliases.get(int(row["version"]), ())) for row in rows]
        if not found:
            _missing(conn, db, ModelRef(name))
    return found


def list_models(db: Database) -> list[ModelInfo]:
    with db.read() as conn:
        counts = {
            name: (int(count), latest)
            for name, count, latest in conn.execute(
                select(
                    model_versions.c.model,
                    func.count(),
                    func.max(model_versions.c.version),
                ).group_by(model_versions.c.model)
            )
        }
        aliases: dict[str, dict[str, int]] = {}
        for model, alias, version in conn.execute(
            select(model_aliases.c.model, model_aliases.c.alias, model_aliases.c.version)
        ):
            aliases.setdefault(model, {})[alias] = int(version)
        rows = conn.execute(select(registered_models).order_by(registered_models.c.name)).all()
    return [
        ModelInfo(
            name=row.name,
            created_at=float(row.created_at),
            versions=counts.get(row.name, (0, None))[0],
            latest=counts.get(row.name, (0, None))[1],
            aliases=dict(sorted(aliases.get(row.name, {}).items())),
        )
        for row in rows
    ]


def delete_version(db: Database, ref: ModelRef) -> tuple[ModelVersion, list[str]]:
    """Delete one version (never one an alias points to) and its export records; returns
    it and the digests of its exported files (the caller deletes the blobs nothing else
    needs). Its number is not given again."""
    if ref.version is None:
        raise ValidationError(
            f"delete names a version by its number ({ref.name}@N), not {ref}: an alias or "
            "'latest' moves, and a deletion must not"
        )
    with db.write() as conn:
        lock_model(conn, db, ref.name)
        found = _get(conn, db, ref)
        if found.aliases:
            shown = ", ".join(found.aliases)
            raise ConflictError(
                f"{found.ref} is {shown}: an alias points to it, so it stays (move the alias "
                f"first: hone models alias {found.model}@N {found.aliases[0]}, or remove it "
                f"with hone models alias {found.ref} {found.aliases[0]} --remove)"
            )
        digests = list(
            conn.execute(
                select(model_exports.c.digest).where(
                    model_exports.c.model == ref.name, model_exports.c.version == ref.version
                )
            ).scalars()
        )
        conn.execute(
            delete(model_exports).where(
                model_exports.c.model == ref.name, model_exports.c.version == ref.version
            )
        )
        conn.execute(
            delete(model_versions).where(
                model_versions.c.model == ref.name, model_versions.c.version == ref.version
            )
        )
    return found, digests
