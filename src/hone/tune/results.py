"""A study's run and its result: the run created (or taken over), the best trial and its
best checkpoint recorded, the optimization history logged, the run ended with the study's
state; and how trials read in reports."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hone.config import Workspace
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.entities import RunStatus
from hone.tracking.start import start_run
from hone.tune import studies
from hone.tune.space import Space
from hone.tune.study import ERROR_ATTR, PRUNED_AT_ATTR, RUN_ATTR, OpenStudy, is_interrupted

if TYPE_CHECKING:
    import optuna


__all__ = [
    "StudyOutcome",
    "best_trial",
    "conclude",
    "count_states",
    "create_study_run",
    "describe_trial",
    "own_study_run",
    "trial_state",
]


@dataclass
class StudyOutcome:
    """How a study (this invocation's part of it) ended."""

    name: str
    run_id: str
    state: str  # complete | stopped | interrupted | timeout | partial
    how: str  # created | joined | resumed
    trials: dict[str, int]  # by state
    budget: int
    best: dict[str, Any] | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.name,
            "run_id": self.run_id,
            "state": self.state,
            "opened": self.how,
            "budget": self.budget,
            "trials": self.trials,
            "best": self.best,
            "error": self.error,
        }


def create_study_run(workspace: Workspace, name: str, config: dict[str, Any], space: Space) -> str:
    params = {
        k: config[k]
        for k in ("kind", "recipe", "data", "metric", "direction", "sampler", "pruner", "seed")
        if config.get(k) is not None
    }
    params["space"] = json.dumps(space.describe(), sort_keys=True)[:8000]
    for key, value in (config.get("params") or {}).items():
        params[f"fixed.{key}"] = value
    run = start_run(
        str(config.get("experiment") or "tune"),
        name,
        params=params,
        tags={"hone.kind": "study", "hone.study": name},
        workspace=workspace,
    )
    with run.lock:
        run.flush()
    run_id = run.id
    _OPEN_RUNS[run_id] = run
    return run_id


#: The study runs this process owns (the one it created, or reopened to resume).
_OPEN_RUNS: dict[str, Any] = {}


def own_study_run(workspace: Workspace, study: OpenStudy) -> Any:
    """The study's run, as this process holds it: the creator's own; else reopened (it
    owns it if nobody does, e.g. after an interruption; else it attaches). A run still
    marked running when no other process works on the study lost its owner (kill -9, on
    any machine): it is marked killed first, and this process takes it over."""
    from hone.tracking.deaths import mark_killed

    run = _OPEN_RUNS.pop(study.run_id, None)
    if run is not None:
        return run
    if study.alone:
        mark_killed(study.db, study.run_id, time.time())
    return start_run(run_id=study.run_id, workspace=workspace)


def conclude(
    study: OpenStudy, study_run: Any, state: str, how: str, error: str | None
) -> StudyOutcome:
    """Record the best trial (and its best checkpoint) as the study's result, and end the
    study's run if this process owns it."""
    import optuna

    record = study.refresh()
    if not study_run._owner:  # attached while another process held it: it may be free now
        study_run.end()
        study_run = start_run(run_id=study.run_id, workspace=study.workspace)
    trials = study.optuna.get_trials(deepcopy=False)
    counts = count_states(trials)
    best = best_trial(study, trials)
    if best is not None:
        studies.set_result(study.db, study.name, best)
        _log_history(study_run, study, trials)
        study_run.set_tags(
            {
                "hone.best_trial": str(best["trial"]),
                "hone.best_run": best.get("run_id") or "",
                "hone.best_value": repr(best["value"]),
                "hone.best_checkpoint": (
                    f"{best['checkpoint']['run_id']}:{best['checkpoint']['step']}"
                    if best.get("checkpoint")
                    else ""
                ),
            }
        )
    running = sum(1 for t in trials if t.state == optuna.trial.TrialState.RUNNING)
    if state == "complete" and (running or record.claimed < record.budget):
        state = "partial"  # other processes still run trials, or budget is left
    study_run.set_tag("hone.study_state", state)
    if error:
        study_run.set_tag("hone.error", error[:4000])
    status = {
        "stopped": RunStatus.FAILED,
        "interrupted": RunStatus.KILLED,
    }.get(state, RunStatus.FINISHED)
    # The last process to leave ends the study's run with the study's state; one that
    # leaves while others work ends it too (they reopen it when they leave).
    study_run.end(status)
    return StudyOutcome(study.name, study.run_id, state, how, counts, record.budget, best, error)


def count_states(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    counts = {"complete": 0, "pruned": 0, "failed": 0, "interrupted": 0, "running": 0}
    for t in trials:
        counts[trial_state(t)] += 1
    return counts


def trial_state(t: optuna.trial.FrozenTrial) -> str:
    import optuna

    state = optuna.trial.TrialState
    if t.state == state.FAIL:
        return "interrupted" if is_interrupted(t) else "failed"
    return {state.COMPLETE: "complete", state.PRUNED: "pruned"}.get(t.state, "running")


def best_trial(study: OpenStudy, trials: list[optuna.trial.FrozenTrial]) -> dict[str, Any] | None:
    import optuna

    done = [
        t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
    ]
    if not done:
        return None
    maximize = study.config.get("direction") == "maximize"
    best = (max if maximize else min)(
        done, key=lambda t: (t.value, -t.number) if maximize else (t.value, t.number)
    )
    run_id = best.system_attrs.get(RUN_ATTR)
    out: dict[str, Any] = {
        "trial": best.number,
        "value": best.value,
        "params": best.params,
        "run_id": run_id,
        "checkpoint": None,
    }
    if run_id:
        out["checkpoint"] = _best_checkpoint(study, str(run_id), maximize)
    return out


def _best_checkpoint(study: OpenStudy, run_id: str, maximize: bool) -> dict[str, Any] | None:
    metric = study.config.get("metric", "value")
    found = [c for c in list_checkpoints(study.db, run_id) if metric in c.metrics]
    if not found:
        return None
    pick = (max if maximize else min)(found, key=lambda c: c.metrics[metric])
    return {
        "run_id": run_id,
        "step": pick.step,
        "weights": pick.weights,
        "state": pick.state,
        metric: pick.metrics[metric],
    }


def _log_history(study_run: Any, study: OpenStudy, trials: list[optuna.trial.FrozenTrial]) -> None:
    """The best value after each trial, on the study's run (the optimization history)."""
    import optuna

    metric = study.config.get("metric", "value")
    maximize = study.config.get("direction") == "maximize"
    best: float | None = None
    points: dict[str, list[tuple[int, float]]] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.state != optuna.trial.TrialState.COMPLETE or t.value is None:
            continue
        if best is None or (t.value > best if maximize else t.value < best):
            best = t.value
        points.setdefault(f"best/{metric}", []).append((t.number, best))
        points.setdefault(f"trial/{metric}", []).append((t.number, t.value))
    for key, series in points.items():
        for step, value in series:
            study_run.log_metric(key, value, step=step)


def describe_trial(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A trial as ``hone tune show`` reports it."""
    duration = (
        (t.datetime_complete - t.datetime_start).total_seconds()
        if t.datetime_complete and t.datetime_start
        else None
    )
    pruned = t.system_attrs.get(PRUNED_AT_ATTR)
    return {
        "number": t.number,
        "state": trial_state(t),
        "value": t.value,
        "params": t.params,
        "duration_s": duration,
        "pruned_at": pruned,
        "run_id": t.system_attrs.get(RUN_ATTR),
        "error": t.system_attrs.get(ERROR_ATTR),
        "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
    }
