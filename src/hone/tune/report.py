"""What ``hone tune show`` and ``hone tune list`` report: a study's record, its trials (state,
params, value, duration, where a pruned one stopped), the best trial and parameter
importances (Optuna's default evaluator)."""

from __future__ import annotations

import math
from typing import Any

from hone.errors import NotFoundError
from hone.store.database import Database
from hone.tune import studies
from hone.tune.results import count_states, describe_trial
from hone.tune.storage import study_storage

__all__ = ["list_report", "study_report"]


def study_report(db: Database, name: str) -> dict[str, Any]:
    import optuna

    from hone.tune import quiet_optuna
    from hone.tune.study import check_study_name

    quiet_optuna()
    check_study_name(name)
    record = studies.get_study(db, name)
    try:
        study = optuna.load_study(study_name=name, storage=study_storage(db, name))
    except KeyError:
        raise NotFoundError(
            f"study {name!r} was never completely created (the process creating it stopped "
            "midway): hone tune ... --study NAME --resume takes it over"
        ) from None
    trials = study.get_trials(deepcopy=False)
    return {
        **record.to_dict(),
        "counts": count_states(trials),
        "trials": [describe_trial(t) for t in trials],
        "importances": importances(study),
    }


def importances(study: Any) -> dict[str, Any]:
    """Optuna's parameter importances, or why there are none yet."""
    import optuna

    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if len(complete) < 2:
        return {"values": {}, "note": "needs at least 2 complete trials"}
    try:
        values = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as exc:  # e.g. every param constant so far
        return {"values": {}, "note": str(exc)}
    return {"values": {k: float(v) for k, v in values.items()}, "note": None}


def list_report(db: Database) -> list[dict[str, Any]]:

    from hone.tune import quiet_optuna

    quiet_optuna()
    out = []
    for record in studies.list_studies(db):
        trials = _trials_of(db, record.name)
        counts = count_states(trials) if trials is not None else count_states([])
        out.append({**record.to_dict(), "counts": counts, "created": trials is not None})
    return out


def _trials_of(db: Database, name: str) -> list[Any] | None:
    """The study's trials; None for a study whose creation stopped before Optuna's record
    of it was made (``--resume`` takes such a study over)."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=study_storage(db, name))
    except KeyError:
        return None
    return list(study.get_trials(deepcopy=False))
