"""A version's exported files: one per format, a blob each, with how it was verified
against the eager model and what made it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from hone.errors import NotFoundError
from hone.registry.versions import ModelVersion, lock_model
from hone.store.database import Database
from hone.store.schema import model_exports, model_versions
from hone.store.upsert import upsert

__all__ = ["Export", "get_export", "list_exports", "record_export"]


@dataclass(frozen=True)
class Export:
    model: str
    version: int
    format: str
    digest: str
    size: int
    body: dict[str, Any]  # verification (max abs difference, rows), opset, package versions
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "digest": self.digest,
            "size": self.size,
            "created_at": self.created_at,
            **self.body,
        }


def record_export(
    db: Database, version: ModelVersion, fmt: str, digest: str, size: int, body: dict[str, Any]
) -> tuple[Export, str | None]:
    """Record (or replace) ``version``'s export in ``fmt``; returns it and the digest of
    the file it replaced, if another (the caller deletes that blob if nothing needs it)."""
    now = time.time()
    with db.write() as conn:
        lock_model(conn, db, version.model)
        alive = conn.execute(
            select(model_versions.c.version).where(
                model_versions.c.model == version.model,
                model_versions.c.version == version.version,
            )
        ).scalar_one_or_none()
        if alive is None:
            raise NotFoundError(f"{version.ref} was deleted meanwhile: its export is not kept")
        before = conn.execute(
            select(model_exports.c.digest).where(
                model_exports.c.model == version.model,
                model_exports.c.version == version.version,
                model_exports.c.format == fmt,
            )
        ).scalar_one_or_none()
        upsert(
            conn,
            model_exports,
            [
                {
                    "model": version.model,
                    "version": version.version,
                    "format": fmt,
                    "digest": digest,
                    "size": size,
                    "body": json.dumps(body, sort_keys=True, allow_nan=False),
                    "created_at": now,
                }
            ],
            keys=("model", "version", "format"),
            update=("digest", "size", "body", "created_at"),
        )
    export = Export(version.model, version.version, fmt, digest, size, body, now)
    return export, (before if before not in (None, digest) else None)


def list_exports(db: Database, version: ModelVersion) -> list[Export]:
    with db.read() as conn:
        rows = conn.execute(
            select(model_exports)
            .where(
                model_exports.c.model == version.model,
                model_exports.c.version == version.version,
            )
            .order_by(model_exports.c.format)
        ).mappings()
        return [_export(r) for r in rows]


def get_export(db: Database, version: ModelVersion, fmt: str) -> Export:
    for export in list_exports(db, version):
        if export.format == fmt:
            return export
    raise NotFoundError(
        f"{version.ref} has no {fmt} export; make one with "
        f"hone models export {version.ref} --format {fmt}"
    )


def _export(row: Any) -> Export:
    return Export(
        model=row["model"],
        version=int(row["version"]),
        format=row["format"],
        digest=row["digest"],
        size=int(row["size"]),
        body=json.loads(row["body"]),
        created_at=float(row["created_at"]),
    )
