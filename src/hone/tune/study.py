"""Opening a study: creating it, joining one that other processes are working on, or
resuming one that was interrupted; and the process's presence while it works on it.

A study is identified by its name. What it searches (recipe, data, space, metric,
direction, sampler, pruner, fixed params) is its identity: a process that opens it with
another one is refused, so two searches never mix in one study.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hone.config import Workspace
from hone.errors import ConflictError, NotFoundError
from hone.ids import check_slug
from hone.store.database import Database
from hone.tune import studies
from hone.tune.choices import make_pruner, make_sampler
from hone.tune.space import Space
from hone.tune.storage import study_storage

if TYPE_CHECKING:
    import optuna

__all__ = [
    "IDENTITY",
    "INTERRUPTED_ATTR",
    "RUN_ATTR",
    "WORKER_ATTR",
    "OpenStudy",
    "check_study_name",
    "fail_interrupted",
    "is_interrupted",
    "open_study",
]

log = logging.getLogger("hone.tune")

#: A study's configuration keys that make it the study it is.
IDENTITY = ("kind", "recipe", "data", "space", "metric", "direction", "sampler", "pruner", "params")
#: Trial attributes hone keeps in Optuna's record (system attributes).
WORKER_ATTR = "hone.worker"  # the process that runs the trial
RUN_ATTR = "hone.run"  # the trial's run
INTERRUPTED_ATTR = "hone.interrupted"  # failed because its process stopped: budget given back
ERROR_ATTR = "hone.error"  # why a failed trial failed
FATAL_ATTR = "hone.fatal"  # a fault of the study's setup, found by a trial: the study stops
PRUNED_AT_ATTR = "hone.pruned_at"  # {"step": ..., "epoch": ...}

#: Seconds a process waits for a study another process is creating to get its run.
CREATION_WAIT_S = 30.0
#: Seconds between a working process's heartbeats.
HEARTBEAT_S = 5.0


def is_interrupted(trial: optuna.trial.FrozenTrial) -> bool:
    """Failed because its process stopped (its budget given back). Only a failed trial
    is: one its owner completed while another process judged it gone keeps its value."""
    import optuna

    return trial.state == optuna.trial.TrialState.FAIL and bool(
        trial.system_attrs.get(INTERRUPTED_ATTR)
    )


def check_study_name(name: Any) -> str:
    return check_slug(name, "study")


@dataclass
class OpenStudy:
    """A study this process works on: hone's record, Optuna's study, this process's id."""

    workspace: Workspace
    db: Database
    name: str
    record: studies.StudyRecord
    optuna: optuna.Study
    space: Space
    worker: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: float = field(default_factory=time.time)
    alone: bool = True  # no other process worked on the study when this one opened it
    _stop: threading.Event = field(default_factory=threading.Event)
    _beat: threading.Thread | None = None

    @property
    def config(self) -> dict[str, Any]:
        return self.record.config

    @property
    def run_id(self) -> str:
        return self.record.run_id

    def refresh(self) -> studies.StudyRecord:
        self.record = studies.get_study(self.db, self.name)
        return self.record

    def present(self) -> None:
        """Say, every few seconds until ``absent``, that this process works on the study
        (``open_study`` begins it; the caller ends it)."""
        if self._beat is not None:
            return
        studies.heartbeat(self.db, self.name, self.worker, self.started_at)
        self._beat = threading.Thread(target=self._beating, name="hone-tune-heartbeat", daemon=True)
        self._beat.start()

    def _beating(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                studies.heartbeat(self.db, self.name, self.worker, self.started_at)
            except Exception as exc:  # the store is away a moment: the next beat may get through
                log.warning(
                    "hone: study %s: could not record this process's presence: %s", self.name, exc
                )

    def absent(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=HEARTBEAT_S + 1)
        with contextlib.suppress(Exception):
            studies.leave(self.db, self.name, self.worker)


def open_study(
    workspace: Workspace,
    db: Database,
    name: str,
    config: dict[str, Any],
    space: Space,
    *,
    budget: int | None,
    resume: bool,
    create_run: Any,
    worker_index: int = 0,
    first: dict[str, Any] | None = None,
) -> tuple[OpenStudy, str]:
    """Create, join or resume study ``name``; returns it and what happened ("created",
    "joined", "resumed"). ``create_run(config)`` makes the study's run and returns its id.
    The study is returned with this process present on it: call ``absent()`` when done.
    A new study's first trial tries the params ``first``, when given."""
    import optuna

    check_study_name(name)
    sampler = make_sampler(config["sampler"], space, config.get("seed"))
    pruner = make_pruner(config["pruner"], int(config.get("epochs", 1)))
    storage = study_storage(db, name)
    wanted = budget if budget is not None else DEFAULT_TRIALS
    worker, started = uuid.uuid4().hex, time.time()
    if resume and not studies.study_exists(db, name):  # a typo must not start a new study
        raise NotFoundError(
            f"no study named {name!r} to resume (hone tune list shows the studies; without "
            "--resume a new one starts)"
        )
    if studies.create_study(db, name, config, wanted):
        # Present before the run exists: a process that starts a moment later waits for the
        # run (set last, once Optuna's study exists), then finds this one working on it.
        studies.heartbeat(db, name, worker, started)
        try:
            study = _create_optuna_study(storage, name, config, sampler, pruner, first)
            studies.set_run(db, name, create_run(config))
        except BaseException:
            with contextlib.suppress(Exception):
                studies.leave(db, name, worker)
            raise
        record = studies.get_study(db, name)
        opened = OpenStudy(workspace, db, name, record, study, space, worker, started)
        opened.present()
        return opened, "created"
    record = _wait_for_run(db, name, resume)
    _check_same(record, config)
    # Present before looking for others: two processes resuming at once see each other.
    studies.heartbeat(db, name, worker, started)
    try:
        if not record.run_id:  # its creator stopped midway: --resume adopts it
            study = _create_optuna_study(storage, name, config, sampler, pruner, first)
            studies.set_run(db, name, create_run(config))
            record = studies.get_study(db, name)
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        seed = config.get("seed")
        if seed is not None:
            # Processes that share a seed would propose the same params (a resumed one, the
            # first trials' again): each draws from a stream of its own.
            salt = 7919 * len(study.get_trials(deepcopy=False)) + worker_index + 1
            if worker_index == 0:  # a process that joins on its own (another machine, say)
                salt += int.from_bytes(os.urandom(3), "big") * 101
            study.sampler = make_sampler(config["sampler"], space, (int(seed) + salt) % 2**32)
        opened = OpenStudy(workspace, db, name, record, study, space, worker, started)
        live, gone = _workers(db, name, exclude=worker)
        opened.alone = not live
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        stale = [t for t in running if _gone(t, live)]
        if not resume and not live:
            done = len(study.get_trials(deepcopy=False))
            left = f"; {len(stale)} trial(s) were left running" if stale else ""
            raise ConflictError(
                f"study {name!r} exists ({done} trial(s) of {record.budget}{left}) and no "
                "process is working on it: continue it with --resume, or choose a new --study "
                "name"
            )
        if resume:
            fail_interrupted(opened, stale)
            if not live:  # nobody else holds claims: count them again, exactly
                seen = studies.get_study(db, name).claimed
                started_trials = [
                    t
                    for t in study.get_trials(deepcopy=False)
                    if t.state != optuna.trial.TrialState.WAITING and not is_interrupted(t)
                ]
                # Only if no process claimed meanwhile (one joining this moment).
                studies.set_claimed(db, name, len(started_trials), expected=seen)
            for gone_worker in gone:
                with contextlib.suppress(Exception):
                    studies.leave(db, name, gone_worker)
        if budget is not None and budget != record.budget:
            studies.set_budget(db, name, budget)
    except BaseException:
        with contextlib.suppress(Exception):
            studies.leave(db, name, worker)
        raise
    opened.refresh()
    opened.present()
    return opened, "resumed" if resume else "joined"


def _create_optuna_study(
    storage: Any,
    name: str,
    config: dict[str, Any],
    sampler: Any,
    pruner: Any,
    first: dict[str, Any] | None,
) -> optuna.Study:
    import optuna

    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction=config["direction"],
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if first:  # waiting in the journal: whichever process asks first runs it
        study.enqueue_trial(first, skip_if_exists=True)
    return study


#: Trials of a new study when --trials is not given.
DEFAULT_TRIALS = 20


def _check_same(record: studies.StudyRecord, config: dict[str, Any]) -> None:
    differ = [k for k in IDENTITY if record.config.get(k) != config.get(k)]
    if not differ:
        return
    shown = "; ".join(
        f"{k}: {_short(record.config.get(k))} there, {_short(config.get(k))} here" for k in differ
    )
    raise ConflictError(
        f"study {record.name!r} exists with another {', '.join(differ)} ({shown}): to continue "
        "it give the same ones with --resume; for this search choose a new --study name"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wait_for_run(db: Database, name: str, resume: bool) -> studies.StudyRecord:
    """A study another process is creating this moment has no run yet: wait a little. One
    whose creator stopped midway (no run after the wait) is adopted by ``--resume``."""
    deadline = time.monotonic() + CREATION_WAIT_S
    while True:
        record = studies.get_study(db, name)
        if record.run_id or time.monotonic() > deadline:
            if not record.run_id and not resume:
                raise ConflictError(
                    f"study {name!r} was never completely created (the process creating it "
                    "stopped midway): --resume takes it over, or choose a new --study name"
                )
            return record
        time.sleep(0.1)


def _workers(db: Database, name: str, exclude: str = "") -> tuple[set[str], list[str]]:
    """The study's other processes still working (ids), and those gone. A process on this
    machine is gone when its pid no longer runs; one elsewhere when the store has not seen
    it for ``gone_after()`` seconds (by the store's clock, not this machine's)."""
    live: set[str] = set()
    gone: list[str] = []
    now = studies.store_time(db)
    here = studies.MACHINE
    limit = gone_after()
    for w in studies.study_workers(db, name):
        if w.worker == exclude:
            continue
        # (here, a pid reused by another process is told apart by the heartbeat's age)
        recent = now - w.seen_at < limit
        alive = _pid_alive(w.pid) and recent if w.host == here else recent
        (live.add(w.worker) if alive else gone.append(w.worker))
    return live, gone


def gone_after() -> float:
    """Seconds without a heartbeat after which a process elsewhere counts as gone: longer
    than a heartbeat may wait on a slow store (twice its time bound), so a store's stall
    never makes live processes look dead."""
    from hone.store.database import store_timeout

    return 2 * store_timeout() + 2 * HEARTBEAT_S


def _gone(trial: optuna.trial.FrozenTrial, live: set[str]) -> bool:
    worker = trial.system_attrs.get(WORKER_ATTR)
    if worker is None:  # asked for a moment ago (its process records itself next), or never
        if not live:
            return True
        started = trial.datetime_start
        return started is None or time.time() - started.timestamp() > gone_after()
    return worker not in live


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_interrupted(opened: OpenStudy, stale: list[optuna.trial.FrozenTrial]) -> None:
    """Trials whose process is gone: failed, marked interrupted, their budget given back,
    their runs marked killed; a grid study's point is queued to run again."""
    import optuna

    from hone.tracking.deaths import mark_killed

    storage = opened.optuna._storage
    grid = opened.config.get("sampler") == "grid"
    for t in stale:
        try:
            storage.set_trial_system_attr(t._trial_id, INTERRUPTED_ATTR, True)
            storage.set_trial_system_attr(
                t._trial_id, ERROR_ATTR, "interrupted: its process stopped before it ended"
            )
            storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        except Exception:  # another process ended it a moment ago: its claim is not ours
            continue
        studies.give_back(opened.db, opened.name)
        run_id = t.system_attrs.get(RUN_ATTR)
        if run_id:  # (on this machine `hone sync` would; a run from elsewhere needs this)
            with contextlib.suppress(Exception):
                mark_killed(opened.db, str(run_id), time.time())
        point = t.params or _grid_point(opened, t)
        if grid and point:  # the grid counts the point as visited: run it again
            opened.optuna.enqueue_trial(point)


def _grid_point(opened: OpenStudy, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The grid point a trial was given before it chose its params (killed that soon)."""
    sampler = opened.optuna.sampler
    grid_id = trial.system_attrs.get("grid_id")
    grids = getattr(sampler, "_all_grids", None)
    names = getattr(sampler, "_param_names", None)
    if not isinstance(grid_id, int) or grids is None or names is None:
        return {}
    try:
        return dict(zip(names, grids[grid_id], strict=True))
    except (IndexError, TypeError, ValueError):
        return {}
