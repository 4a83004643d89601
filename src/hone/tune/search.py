"""Running a study: open it (create, join or resume), run its trials in this process or
in ``parallel`` worker processes (tune/workers.py), and record the result
(tune/results.py). ``optimize`` does the same for a Python function."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hone.config import Workspace
from hone.errors import ValidationError
from hone.tracking.tracker import get_tracker
from hone.tracking.validation import check_name
from hone.tune import signals
from hone.tune.choices import DIRECTIONS, PRUNERS, SAMPLERS, check_choice
from hone.tune.driver import StudyStopped, work
from hone.tune.objectives import FunctionTrials
from hone.tune.plan import Plan, check_counts, check_seed, new_study_name
from hone.tune.results import StudyOutcome, conclude, create_study_run, own_study_run
from hone.tune.space import Space, callable_name, parse_space
from hone.tune.study import OpenStudy, check_study_name, open_study
from hone.tune.workers import run_processes

if TYPE_CHECKING:
    import optuna


__all__ = ["optimize", "run_plan"]


def run_plan(plan: Plan, *, watch: Watch | None = None) -> StudyOutcome:
    """Open the plan's study and run its trials (here, or in ``parallel`` processes);
    ``watch(study)`` starts a progress display and returns its stop."""
    from hone.tune import quiet_optuna

    quiet_optuna()
    db = get_tracker(plan.workspace).db

    def create_run(config: dict[str, Any]) -> str:
        return create_study_run(plan.workspace, plan.name, config, plan.space)

    study, how = open_study(
        plan.workspace,
        db,
        plan.name,
        plan.config,
        plan.space,
        budget=plan.budget,
        resume=plan.resume,
        create_run=create_run,
        first=plan.baseline,
    )
    try:
        return _run_opened(plan, study, how, watch)
    finally:
        study.absent()


def _run_opened(plan: Plan, study: OpenStudy, how: str, watch: Watch | None) -> StudyOutcome:
    study_run = own_study_run(plan.workspace, study)
    deadline = time.monotonic() + plan.timeout if plan.timeout else None
    stop_watch = watch(study) if watch is not None else None
    state, error = "complete", None
    try:
        if plan.parallel == 1:
            with signals.interruptible():
                work(study, plan.objective, deadline=deadline)
        else:
            error = run_processes(plan, study, deadline)
            if error is not None:
                state = "stopped"
    except StudyStopped as exc:
        state, error = "stopped", str(exc)
    except KeyboardInterrupt:
        state, error = "interrupted", "interrupted"
    finally:
        if stop_watch is not None:
            stop_watch()
    if state == "complete" and deadline is not None and time.monotonic() >= deadline:
        state = "timeout"
    return conclude(study, study_run, state, how, error)


Watch = Callable[[OpenStudy], Callable[[], None]]


def optimize(
    objective: Callable[[optuna.Trial], float],
    *,
    n_trials: int,
    study: str | None = None,
    direction: str = "maximize",
    sampler: str = "tpe",
    pruner: str = "none",
    seed: int | None = None,
    metric: str = "value",
    timeout: float | None = None,
    resume: bool = False,
    experiment: str = "tune",
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> StudyOutcome:
    """Run ``objective(trial)`` (Optuna's define-by-run) as a study of ``n_trials`` trials,
    each a run of its own under the study's run. Several processes calling this with the
    same ``study`` name share its trials (see ``hone tune``)."""
    from hone.tracking.start import workspace_of
    from hone.tune import quiet_optuna

    quiet_optuna()
    if not callable(objective):
        raise ValidationError(f"objective must be a function of Optuna's trial, got {objective!r}")
    check_counts(n_trials, 1, timeout)
    check_seed(seed)
    check_choice(direction, DIRECTIONS, "direction")
    check_choice(pruner, PRUNERS, "pruner")
    check_choice(sampler, SAMPLERS, "sampler")
    check_name(metric, "metric")
    check_name(experiment, "experiment")
    ws = workspace_of(workspace)
    name = (
        check_study_name(study)
        if study is not None
        else new_study_name(getattr(objective, "__name__", "study"))
    )
    where = f"objective {callable_name(objective)}"
    # The function chooses its own params: the space is only its fingerprint.
    space = Space(None, None, where, parse_space(objective, where).fingerprint)
    config: dict[str, Any] = {
        "kind": "function",
        "recipe": callable_name(objective),
        "data": None,
        "space": space.fingerprint,
        "metric": metric,
        "direction": direction,
        "sampler": sampler,
        "pruner": pruner,
        "seed": seed,
        "params": {},
        "epochs": 1,
        "experiment": experiment,
    }
    db = get_tracker(ws).db

    def create_run(cfg: dict[str, Any]) -> str:
        return create_study_run(ws, name, cfg, space)

    opened, how = open_study(
        ws, db, name, config, space, budget=n_trials, resume=resume, create_run=create_run
    )
    try:
        study_run = own_study_run(ws, opened)
        deadline = time.monotonic() + timeout if timeout else None
        state, error = "complete", None
        try:
            with signals.interruptible():
                work(opened, FunctionTrials(objective, metric, experiment), deadline=deadline)
        except StudyStopped as exc:
            state, error = "stopped", str(exc)
        except KeyboardInterrupt:
            conclude(opened, study_run, "interrupted", how, "interrupted")
            raise
        if state == "complete" and deadline is not None and time.monotonic() >= deadline:
            state = "timeout"
        return conclude(opened, study_run, state, how, error)
    finally:
        opened.absent()
