"""The trial loop of one process: claim a trial of the budget, ask Optuna for its params,
run it, tell Optuna how it ended; until the budget is handed out, the time is up, the
process is stopped, or the study cannot go on.

Any number of processes on any number of machines run this loop on one study at once;
the budget's claims (``studies.claim_trial``) keep them from running more trials than
asked, and Optuna's journal gives every trial a number of its own.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hone.errors import UserError
from hone.tune import signals, studies
from hone.tune.study import (
    ERROR_ATTR,
    FATAL_ATTR,
    INTERRUPTED_ATTR,
    PRUNED_AT_ATTR,
    RUN_ATTR,
    WORKER_ATTR,
    OpenStudy,
    is_interrupted,
)

if TYPE_CHECKING:
    import optuna

__all__ = [
    "MAX_CONSECUTIVE_FAILURES",
    "Objective",
    "StudyStopped",
    "TrialOutcome",
    "work",
]

log = logging.getLogger("hone.tune")

#: The study stops when this many trials in a row failed (their errors are recorded).
MAX_CONSECUTIVE_FAILURES = 5


class StudyStopped(UserError):
    """The study cannot go on: its setup is wrong, or every trial fails."""


@dataclass
class TrialOutcome:
    state: str  # complete | pruned | failed | interrupted
    value: float | None = None
    run_id: str | None = None
    error: str | None = None
    pruned_at: dict[str, int] | None = None  # {"step": ..., "epoch": ...}
    run_recorded: bool = False  # the objective recorded the run on the trial itself
    fatal: str | None = None  # a fault of the study's setup: it stops


class Objective(Protocol):
    """Runs one trial and says how it ended (never raises for the trial's own failure)."""

    def __call__(self, trial: optuna.Trial, study: OpenStudy) -> TrialOutcome: ...


def work(
    study: OpenStudy,
    objective: Objective,
    *,
    deadline: float | None = None,
) -> int:
    """Run trials of ``study`` until none is left to claim (or ``deadline``, a monotonic
    time, passes); returns how many this process ran. Raises
    ``StudyStopped`` when the study cannot go on, ``KeyboardInterrupt`` when interrupted
    (the trial that was running is failed as interrupted and its budget given back)."""
    ran = 0
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            break
        check_failures(study)
        signals.defer()  # a claim is never left without its trial, nor a trial untold
        try:
            claimed = studies.claim_trial(study.db, study.name)
            if claimed:
                try:
                    trial = study.optuna.ask()
                except Exception:
                    studies.give_back(study.db, study.name)
                    raise
                storage = study.optuna._storage
                storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, study.worker)
        except BaseException:
            signals.take()
            raise
        if not claimed:
            signals.release()
            break
        if signals.take():  # stopped while claiming: the trial is told, not run
            outcome = TrialOutcome("interrupted", error="interrupted")
        else:
            outcome = _run(objective, trial, study)
        signals.defer()  # (the objective defers too, the moment its trial is done)
        try:
            tell(study, trial, outcome)
            ran += 1
        finally:
            signals.release()  # a signal that came meanwhile: now, with the trial recorded
        if outcome.state == "interrupted":
            raise KeyboardInterrupt
        if outcome.fatal:
            raise StudyStopped(outcome.fatal)
    return ran


def _run(objective: Objective, trial: optuna.Trial, study: OpenStudy) -> TrialOutcome:
    try:
        return objective(trial, study)
    except KeyboardInterrupt:
        return TrialOutcome("interrupted", error="interrupted")
    except StudyStopped as exc:
        return TrialOutcome("failed", error=str(exc), fatal=str(exc))
    except Exception as exc:  # the objective's own fault: this trial fails
        return TrialOutcome("failed", error=f"{type(exc).__name__}: {exc}")


def tell(study: OpenStudy, trial: optuna.Trial, outcome: TrialOutcome) -> None:
    """Record how the trial ended in Optuna's journal (hone's attributes first: a finished
    trial takes no more)."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError

    storage = study.optuna._storage
    tid = trial._trial_id
    state = optuna.trial.TrialState
    value = outcome.value
    if outcome.state == "complete" and (value is None or not math.isfinite(value)):
        outcome.state = "failed"
        outcome.error = f"the trial's {study.config.get('metric', 'value')} is {value}"
    if storage.get_trial(tid).state.is_finished():
        _ended_elsewhere(study, trial, outcome)
        return
    try:
        if outcome.run_id and not outcome.run_recorded:
            storage.set_trial_system_attr(tid, RUN_ATTR, outcome.run_id)
        if outcome.state == "pruned":
            if outcome.pruned_at:
                storage.set_trial_system_attr(tid, PRUNED_AT_ATTR, outcome.pruned_at)
            _tell(study, trial, state=state.PRUNED)
        elif outcome.state == "complete":
            _tell(study, trial, value)
        else:
            if outcome.state == "interrupted":
                storage.set_trial_system_attr(tid, INTERRUPTED_ATTR, True)
            if outcome.fatal:
                storage.set_trial_system_attr(tid, FATAL_ATTR, outcome.fatal[:2000])
            storage.set_trial_system_attr(tid, ERROR_ATTR, (outcome.error or "failed")[:2000])
            _tell(study, trial, state=state.FAIL)
            if outcome.state == "interrupted":
                studies.give_back(study.db, study.name)
                if study.config.get("sampler") == "grid" and trial.params:
                    # The grid counts a failed point as visited: it is queued to run again.
                    study.optuna.enqueue_trial(dict(trial.params))
    except UpdateFinishedTrialError:
        _ended_elsewhere(study, trial, outcome)
    except ValueError as exc:  # Optuna's "Cannot tell a FAIL trial", said another way
        if "Cannot tell" not in str(exc):
            raise
        _ended_elsewhere(study, trial, outcome)


def _ended_elsewhere(study: OpenStudy, trial: optuna.Trial, outcome: TrialOutcome) -> None:
    """Another process judged this one gone and failed the trial (``--resume``) while it
    ran: the study counts it as interrupted; its result stays in its run."""
    log.warning(
        "hone: trial %d of study %s was ended by another process meanwhile (it judged this "
        "one gone); its result (%s) is in run %s",
        trial.number,
        study.name,
        outcome.state,
        outcome.run_id or "-",
    )


def _tell(study: OpenStudy, trial: optuna.Trial, *args: Any, **kwargs: Any) -> None:
    """Optuna's tell. The grid sampler stops a study whose grid is done by calling
    ``study.stop()``, which Optuna allows only inside its own optimize loop: the trial is
    recorded by then, and hone's loop ends on the budget, so that refusal is let be."""
    try:
        study.optuna.tell(trial, *args, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def check_failures(study: OpenStudy) -> None:
    """Stop the study when the last ``MAX_CONSECUTIVE_FAILURES`` trials to end since this
    process opened it all failed (any process's; interrupted ones do not count), or one
    found a fault of the setup. Trials before then do not count: a study resumed after its
    cause was fixed starts afresh."""
    import optuna

    since = study.started_at
    ended = [
        t
        for t in study.optuna.get_trials(deepcopy=False)
        if t.state.is_finished()
        and not is_interrupted(t)
        and t.datetime_complete is not None
        and t.datetime_complete.timestamp() >= since
    ]
    fatal = next((t for t in ended if t.system_attrs.get(FATAL_ATTR)), None)
    if fatal is not None:
        raise StudyStopped(str(fatal.system_attrs[FATAL_ATTR]))
    ended.sort(key=lambda t: (t.datetime_complete, t.number))
    last = ended[-MAX_CONSECUTIVE_FAILURES:]
    if len(last) == MAX_CONSECUTIVE_FAILURES and all(
        t.state == optuna.trial.TrialState.FAIL for t in last
    ):
        error = last[-1].system_attrs.get(ERROR_ATTR, "no error recorded")
        raise StudyStopped(
            f"study {study.name!r} stopped: its last {MAX_CONSECUTIVE_FAILURES} trials failed "
            f"(trials {', '.join(str(t.number) for t in last)}); the last one: {error}"
        )
