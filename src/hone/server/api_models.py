"""``/api`` for the model registry: models, a model's versions with the aliases' audit
history and the promotion gate's evaluations, one version's lineage and exports, and moving
an alias (the one registry change the UI makes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hone.errors import ValidationError
from hone.models import manage
from hone.models.promotion import EXPERIMENT as PROMOTIONS
from hone.models.workspace import Opened
from hone.registry.exports import list_exports
from hone.registry.refs import check_model_name
from hone.server.api_runs import table_row
from hone.tracking import queries

__all__ = ["AliasMove", "models_router", "version_number"]

#: Promotion evaluations shown for one model, newest first.
MAX_PROMOTIONS = 200


class AliasMove(BaseModel):
    # Strict: "yes" is no boolean and "1" no version (a loose reading once removed an alias).
    model_config = ConfigDict(extra="forbid", strict=True)

    alias: str = Field(description="The alias, e.g. champion.")
    version: int = Field(description="The version it should point at.")
    why: str | None = Field(default=None, description="Kept in the audit history.")
    remove: bool = Field(default=False, description="Take the alias off this version.")


def models_router(ws: Opened) -> APIRouter:
    router = APIRouter(prefix="/api/models", tags=["models"])
    where = ws.workspace

    @router.get("", summary="Every model with its versions' count and aliases")
    def models() -> list[dict[str, Any]]:
        return [
            {
                "name": m.name,
                "created_at": m.created_at,
                "versions": m.versions,
                "latest": m.latest,
                "aliases": m.aliases,
            }
            for m in manage.models(workspace=where)
        ]

    @router.get("/{name}", summary="A model's versions, alias history and promotions")
    def model(name: str) -> dict[str, Any]:
        check_model_name(name)
        versions = manage.versions(name, workspace=where)
        history = manage.history(name, workspace=where)
        promotions = queries.search_runs(
            ws.db,
            experiment=PROMOTIONS,
            filter=f"tags.`hone.model` = '{_quoted(name)}'",
            max_results=MAX_PROMOTIONS,
        )
        return {
            "name": name,
            "versions": [v.to_dict() for v in versions],
            "history": [e.to_dict() for e in history],
            "promotions": [
                {**table_row(r), "account": r.tags.get("hone.gate.account", "")} for r in promotions
            ],
        }

    @router.get("/{name}/{version}", summary="One version: lineage tree and exports")
    def version(name: str, version: str) -> dict[str, Any]:
        number = version_number(version, "version")
        found, tree = manage.show(f"{check_model_name(name)}@{number}", workspace=where)
        return {
            **found.to_dict(),
            "lineage": tree,
            "exports": [e.to_dict() for e in list_exports(ws.db, found)],
        }

    @router.post("/{name}/aliases", summary="Point an alias at a version (or take it off)")
    def move(name: str, body: AliasMove) -> dict[str, Any]:
        event = manage.alias(
            f"{check_model_name(name)}@{body.version}",
            body.alias,
            why=body.why,
            remove=body.remove,
            workspace=where,
        )
        return {"moved": event is not None, "event": None if event is None else event.to_dict()}

    return router


def version_number(text: str, what: str) -> int:
    """A version number as a path or query gives it: plain digits, 1 to 2^31 - 1."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) < 2**31:
        raise ValidationError(f"{what} {text[:40]!r}: give a version number (1, 2, ...)")
    return int(text)


def _quoted(text: str) -> str:
    """Text inside a single-quoted string of the filter language."""
    return text.replace("\\", "\\\\").replace("'", "\\'")
