"""Reading and managing the registry from Python: a version, the models, aliases set by
hand (audited as promotions are), their history, deleting a version."""

from __future__ import annotations

from typing import Any

from hone.errors import ConflictError, ValidationError
from hone.models.lineage import lineage
from hone.models.workspace import WorkspaceLike, opened
from hone.registry import (
    AliasEvent,
    ModelInfo,
    ModelVersion,
    alias_history,
    aliases_of,
    check_model_name,
    delete_version,
    get_version,
    list_models,
    list_versions,
    move_alias,
    parse_model_ref,
)
from hone.registry.refs import check_alias
from hone.tracking.checkpoints import collect_unreferenced

__all__ = ["alias", "delete", "get", "history", "models", "show", "versions"]


def get(ref: str, *, workspace: WorkspaceLike = None) -> ModelVersion:
    ws = opened(workspace)
    return get_version(ws.db, parse_model_ref(ref))


def show(ref: str, *, workspace: WorkspaceLike = None) -> tuple[ModelVersion, dict[str, Any]]:
    """The version and its lineage tree."""
    ws = opened(workspace)
    version = get_version(ws.db, parse_model_ref(ref))
    return version, lineage(ws.db, version)


def models(*, workspace: WorkspaceLike = None) -> list[ModelInfo]:
    return list_models(opened(workspace).db)


def versions(name: str, *, workspace: WorkspaceLike = None) -> list[ModelVersion]:
    return list_versions(opened(workspace).db, check_model_name(name))


def alias(
    ref: str,
    name: str,
    *,
    why: str | None = None,
    remove: bool = False,
    workspace: WorkspaceLike = None,
) -> AliasEvent | None:
    """Point alias ``name`` at ``ref`` (a version, or another alias's version), recorded
    with who and ``why``; ``remove`` takes it off ``ref`` (which it must point at). None:
    it already pointed there."""
    ws = opened(workspace)
    check_alias(name)
    if not isinstance(remove, bool):
        raise ValidationError(f"remove must be true or false, got {remove!r:.40}")
    if why is not None and not isinstance(why, str):
        raise ValidationError(f"why must be text, got {type(why).__name__}")
    version = get_version(ws.db, parse_model_ref(ref))
    if remove:
        now = aliases_of(ws.db, version.model).get(name)
        if now is not None and now != version.version:
            raise ConflictError(
                f"{version.model}@{name} points at @{now}, not {version.ref}: nothing removed"
            )
        return move_alias(ws.db, version.model, name, None, why=why, expect=version.version)
    return move_alias(ws.db, version.model, name, version.version, why=why)


def history(
    name: str, *, alias: str | None = None, workspace: WorkspaceLike = None
) -> list[AliasEvent]:
    return alias_history(opened(workspace).db, check_model_name(name), alias)


def delete(ref: str, *, workspace: WorkspaceLike = None) -> ModelVersion:
    """Delete a version (refused while an alias points to it) and the exported files
    nothing else needs; its checkpoint stays with its run (and its weights with it, while
    the run keeps that checkpoint)."""
    ws = opened(workspace)
    version, digests = delete_version(ws.db, parse_model_ref(ref))
    collect_unreferenced(ws.db, ws.blobs, {*digests, version.weights})
    return version
