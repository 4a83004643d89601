"""Aliases (``champion``, ``challenger``): where each points now, and every move ever made
(from, to, when, who, why, and the evaluation run of a promotion). A move is conditional
when the caller read the alias before deciding (a promotion): if it moved meanwhile, the
move is refused and the caller is told, so two promotions at once never both win."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update

from hone.errors import ConflictError, NotFoundError, ValidationError
from hone.registry.refs import ModelRef, check_alias, check_model_name
from hone.registry.versions import _get, lock_model, require_model, who
from hone.store.database import Database
from hone.store.schema import alias_events, model_aliases

__all__ = ["ANY", "AliasEvent", "alias_history", "aliases_of", "check_why", "move_alias"]

#: ``expect=ANY``: move the alias wherever it points now.
ANY: Any = object()
MAX_WHY = 2000


@dataclass(frozen=True)
class AliasEvent:
    id: int
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    at: float
    who: str
    why: str | None
    run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "from": self.from_version,
            "to": self.to_version,
            "at": self.at,
            "who": self.who,
            "why": self.why,
            "run_id": self.run_id,
        }


def check_why(why: object) -> str | None:
    """A reason as the history keeps it: text (NUL bytes dropped), at most 2,000
    characters; storable on every backend."""
    if why is None:
        return None
    if not isinstance(why, str):
        raise ValidationError(f"why must be text, got {type(why).__name__}")
    try:
        why.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"why is not valid Unicode ({exc.reason} at {exc.start})") from None
    return why.replace("\x00", "")[:MAX_WHY] or None


def aliases_of(db: Database, name: str) -> dict[str, int]:
    check_model_name(name)
    with db.read() as conn:
        rows = conn.execute(
            select(model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.model == name)
            .order_by(model_aliases.c.alias)
        ).all()
    return {alias: int(version) for alias, version in rows}


def move_alias(
    db: Database,
    name: str,
    alias: str,
    to: int | None,
    *,
    why: str | None = None,
    run_id: str | None = None,
    expect: Any = ANY,
    also: Mapping[str, int | None] | None = None,
) -> AliasEvent | None:
    """Point ``alias`` of model ``name`` at version ``to`` (None: remove it) and record the
    move. ``expect``: the version the caller saw it on (None: unset); if it points
    elsewhere now, ConflictError and nothing changes; ``also``: other aliases that must
    still point where the caller saw them (what a promotion's gate compared against).
    Returns None when the alias already is where it was asked to be (nothing to record)."""
    check_model_name(name)
    check_alias(alias)
    why = check_why(why)
    with db.write() as conn:
        lock_model(conn, db, name)
        require_model(conn, db, name)
        if to is not None:
            _get(conn, db, ModelRef(name, version=to))  # NotFoundError naming what exists
        current = conn.execute(
            select(model_aliases.c.version).where(
                model_aliases.c.model == name, model_aliases.c.alias == alias
            )
        ).scalar_one_or_none()
        if to is None and current is None:
            raise NotFoundError(f"model {name!r} has no alias {alias!r} to remove")
        if expect is not ANY and current != expect:
            was = "unset" if expect is None else f"{name}@{expect}"
            now = "removed" if current is None else f"{name}@{current}"
            raise ConflictError(
                f"{name}@{alias} moved while this was deciding (it was {was}, it is {now} "
                "now, moved by another process): nothing changed; decide again against it"
            )
        for other_alias, saw in (also or {}).items():
            there = conn.execute(
                select(model_aliases.c.version).where(
                    model_aliases.c.model == name, model_aliases.c.alias == other_alias
                )
            ).scalar_one_or_none()
            if there != saw:
                was = "unset" if saw is None else f"{name}@{saw}"
                is_now = "removed" if there is None else f"{name}@{there}"
                raise ConflictError(
                    f"{name}@{other_alias} moved while this was deciding (it was {was}, it "
                    f"is {is_now} now): nothing changed; decide again against it"
                )
        if current == to:
            return None
        at = time.time()
        if to is None:
            conn.execute(
                delete(model_aliases).where(
                    model_aliases.c.model == name, model_aliases.c.alias == alias
                )
            )
        elif current is None:
            conn.execute(
                insert(model_aliases).values(model=name, alias=alias, version=to, updated_at=at)
            )
        else:
            conn.execute(
                update(model_aliases)
                .where(model_aliases.c.model == name, model_aliases.c.alias == alias)
                .values(version=to, updated_at=at)
            )
        by = who()
        event_id = conn.execute(
            insert(alias_events)
            .values(
                model=name,
                alias=alias,
                from_version=current,
                to_version=to,
                at=at,
                who=by,
                why=why,
                run_id=run_id,
            )
            .returning(alias_events.c.id)
        ).scalar_one()
    return AliasEvent(int(event_id), name, alias, current, to, at, by, why, run_id)


def alias_history(db: Database, name: str, alias: str | None = None) -> list[AliasEvent]:
    """Every move of the model's aliases (of ``alias`` only, if given), oldest first."""
    check_model_name(name)
    query = select(alias_events).where(alias_events.c.model == name)
    if alias is not None:
        query = query.where(alias_events.c.alias == check_alias(alias))
    with db.read() as conn:
        rows = conn.execute(query.order_by(alias_events.c.id)).mappings().all()
        if not rows:
            require_model(conn, db, name)
    return [
        AliasEvent(
            id=int(r["id"]),
            model=r["model"],
            alias=r["alias"],
            from_version=r["from_version"],
            to_version=r["to_version"],
            at=float(r["at"]),
            who=r["who"],
            why=r["why"],
            run_id=r["run_id"],
        )
        for r in rows
    ]
