"""hone's record of each study, beside Optuna's journal of it: the study's run, what it
searches (its configuration), the trial budget and the part of it handed out, the result;
and the processes working on it, each seen every few seconds.

The budget is what keeps processes on several machines from running more trials than
asked: each claims one with a conditional UPDATE before asking Optuna for a trial, which
both backends apply atomically.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from hone.errors import NotFoundError
from hone.store.database import Database
from hone.store.schema import tune_studies, tune_workers
from hone.store.upsert import upsert

#: PostgreSQL's clock, as seconds since the epoch.
_NOW = text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")

__all__ = [
    "StudyRecord",
    "Worker",
    "claim_trial",
    "create_study",
    "get_study",
    "give_back",
    "heartbeat",
    "list_studies",
    "set_budget",
    "set_result",
    "set_run",
    "study_workers",
]


@dataclass(frozen=True)
class StudyRecord:
    name: str
    run_id: str  # "" while its creator is still creating the run
    config: dict[str, Any]
    budget: int
    claimed: int
    created_at: float
    result: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "run_id": self.run_id,
            "config": self.config,
            "budget": self.budget,
            "claimed": self.claimed,
            "created_at": self.created_at,
            "result": self.result,
        }


@dataclass(frozen=True)
class Worker:
    worker: str
    host: str
    pid: int
    started_at: float
    seen_at: float


def _record(row: Any) -> StudyRecord:
    return StudyRecord(
        name=row.name,
        run_id=row.run_id,
        config=json.loads(row.config),
        budget=int(row.budget),
        claimed=int(row.claimed),
        created_at=float(row.created_at),
        result=json.loads(row.result) if row.result else None,
    )


def create_study(db: Database, name: str, config: dict[str, Any], budget: int) -> bool:
    """Record a new study (its run still to come); False if the name exists."""
    row = {
        "name": name,
        "run_id": "",
        "config": json.dumps(config, sort_keys=True),
        "budget": budget,
        "claimed": 0,
        "created_at": time.time(),
        "result": None,
    }
    with db.write() as conn:
        return upsert(conn, tune_studies, [row], keys=("name",)) == 1


def get_study(db: Database, name: str) -> StudyRecord:
    with db.read() as conn:
        row = conn.execute(select(tune_studies).where(tune_studies.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no study named {name!r} (hone tune list shows the studies)")
    return _record(row)


def study_exists(db: Database, name: str) -> bool:
    with db.read() as conn:
        found = conn.execute(select(tune_studies.c.name).where(tune_studies.c.name == name)).first()
    return found is not None


def list_studies(db: Database) -> list[StudyRecord]:
    with db.read() as conn:
        rows = conn.execute(select(tune_studies).order_by(tune_studies.c.created_at)).all()
    return [_record(r) for r in rows]


def set_run(db: Database, name: str, run_id: str) -> None:
    with db.write() as conn:
        conn.execute(update(tune_studies).where(tune_studies.c.name == name).values(run_id=run_id))


def claim_trial(db: Database, name: str) -> bool:
    """Take one trial of the budget; False when it is all handed out."""
    with db.write() as conn:
        taken = conn.execute(
            update(tune_studies)
            .where(tune_studies.c.name == name, tune_studies.c.claimed < tune_studies.c.budget)
            .values(claimed=tune_studies.c.claimed + 1)
        ).rowcount
    return bool(taken)


def give_back(db: Database, name: str) -> None:
    """Return a claim no trial used (an interrupted trial's), never below zero."""
    with db.write() as conn:
        conn.execute(
            update(tune_studies)
            .where(tune_studies.c.name == name, tune_studies.c.claimed > 0)
            .values(claimed=tune_studies.c.claimed - 1)
        )


def set_claimed(db: Database, name: str, claimed: int, *, expected: int) -> bool:
    """Set the claims to ``claimed`` if they are still ``expected`` (no process claimed in
    between); whether they were set."""
    with db.write() as conn:
        done = conn.execute(
            update(tune_studies)
            .where(tune_studies.c.name == name, tune_studies.c.claimed == expected)
            .values(claimed=claimed)
        ).rowcount
    return bool(done)


def set_budget(db: Database, name: str, budget: int) -> None:
    with db.write() as conn:
        conn.execute(update(tune_studies).where(tune_studies.c.name == name).values(budget=budget))


def set_result(db: Database, name: str, result: dict[str, Any]) -> None:
    with db.write() as conn:
        conn.execute(
            update(tune_studies)
            .where(tune_studies.c.name == name)
            .values(result=json.dumps(result, sort_keys=True))
        )


def machine() -> str:
    """This machine, as the processes on it share it: host name, boot, pid namespace (two
    containers, or two machines, with one host name are told apart; a pid means something
    only within one namespace)."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return "/".join(parts)[:250]


def store_time(db: Database) -> float:
    """Now, by the store's clock (PostgreSQL's; this machine's for SQLite, which only this
    machine's processes share): heartbeats from machines whose clocks differ compare."""
    if db.backend != "postgresql":
        return time.time()
    with db.read() as conn:
        return float(conn.execute(_NOW).scalar_one())


def heartbeat(db: Database, study: str, worker: str, started_at: float) -> None:
    """This process is working on ``study`` now."""
    with db.write() as conn:
        now = float(conn.execute(_NOW).scalar_one()) if db.backend == "postgresql" else time.time()
        upsert(
            conn,
            tune_workers,
            [
                {
                    "study": study,
                    "worker": worker,
                    "host": MACHINE,
                    "pid": os.getpid(),
                    "started_at": started_at,
                    "seen_at": now,
                }
            ],
            keys=("study", "worker"),
            update=("seen_at",),
        )


def leave(db: Database, study: str, worker: str) -> None:
    with db.write() as conn:
        conn.execute(
            tune_workers.delete().where(
                tune_workers.c.study == study, tune_workers.c.worker == worker
            )
        )


def study_workers(db: Database, study: str) -> list[Worker]:
    with db.read() as conn:
        rows = conn.execute(select(tune_workers).where(tune_workers.c.study == study)).all()
    return [
        Worker(r.worker, r.host, int(r.pid), float(r.started_at), float(r.seen_at)) for r in rows
    ]


#: This process's machine, as ``machine()`` names it.
MACHINE = machine()
