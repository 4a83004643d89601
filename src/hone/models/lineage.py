"""A version's lineage as a tree: model → run (and its study) → checkpoint → dataset
version (its fitted preprocessing) → its parents → their source; the code's commit. Plain
nested dicts, so the CLI draws them and ``--json`` prints them."""

from __future__ import annotations

from typing import Any

from hone.data.versions import get_row
from hone.errors import NotFoundError
from hone.registry import ModelVersion, list_exports
from hone.store.database import Database
from hone.tracking.queries import get_run

__all__ = ["lineage"]

#: Dataset ancestors shown at most (a long append history is cut, and says so).
MAX_ANCESTORS = 50


def _node(kind: str, label: str, **details: Any) -> dict[str, Any]:
    return {"kind": kind, "label": label, **details, "children": []}


def lineage(db: Database, version: ModelVersion) -> dict[str, Any]:
    body = version.body
    aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
    root = _node(
        "model",
        f"{version.ref}{aliases}",
        created_by=version.created_by,
        created_at=version.created_at,
        exports=[e.to_dict() for e in list_exports(db, version)],
    )
    git = body.get("git") or {}
    try:
        run = get_run(db, version.run_id)
        run_node = _node(
            "run",
            f"run {run.id} {run.name!r} ({run.status.value}, experiment {run.experiment})",
            id=run.id,
            commit=git.get("commit"),
            dirty=git.get("dirty"),
        )
        if run.parent_run_id:
            run_node["parent_run_id"] = run.parent_run_id
    except NotFoundError:
        run_node = _node("run", f"run {version.run_id} (no longer recorded)", id=version.run_id)
    commit = git.get("commit")
    if commit:
        dirty = " with uncommitted changes" if git.get("dirty") else ""
        run_node["children"].append(_node("commit", f"commit {commit}{dirty}", commit=commit))
    source = body.get("source") or {}
    if source.get("kind") == "study":
        run_node["children"].append(
            _node(
                "study",
                f"study {source.get('study')} (trial {source.get('trial')})",
                study=source.get("study"),
                trial=source.get("trial"),
            )
        )
    root["children"].append(run_node)
    checkpoint = body.get("checkpoint") or {}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted((body.get("metrics") or {}).items()))
    ckpt_node = _node(
        "checkpoint",
        f"checkpoint step {version.step} (epoch {checkpoint.get('epoch')}){': ' if shown else ''}"
        f"{shown}",
        step=version.step,
        weights=version.weights,
    )
    run_node["children"].append(ckpt_node)
    ckpt_node["children"].append(_dataset_tree(db, version.dataset_version, body))
    return root


def _dataset_tree(db: Database, version_id: str, body: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] | None = None
    parent: dict[str, Any] | None = None
    frontier = [version_id]
    seen: set[str] = set()
    shown = 0
    while frontier and shown < MAX_ANCESTORS:
        current = frontier.pop(0)
        if current in seen:
            continue
        seen.add(current)
        row = get_row(db, current)
        if row is None:
            node = _node("dataset", f"dataset version {current[:12]} (no longer recorded)")
        else:
            what = row.operation
            steps = [t.get("op") for t in body.get("preprocessing") or []] if first is None else []
            extra = f", preprocessing {' → '.join(map(str, steps))}" if steps else ""
            node = _node(
                "dataset",
                f"dataset {row.dataset}@{row.id[:12]} ({what}, {row.rows:,} rows{extra})",
                id=row.id,
                operation=row.operation,
                rows=row.rows,
            )
            if not row.parents and row.source:
                node["children"].append(_node("source", f"source {row.source}", source=row.source))
            frontier.extend(row.parents)
        shown += 1
        if first is None:
            first = node
        else:
            assert parent is not None
            parent["children"].append(node)
        parent = node
    if frontier and parent is not None:
        parent["children"].append(_node("more", f"… {len(frontier)} older versions not shown"))
    assert first is not None
    return first
