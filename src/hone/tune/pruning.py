"""The training loop's epoch hook for a trial (``train.Hook``, loaded by name in the job's
rank 0): report the study's metric to Optuna as the trial's value at this epoch, and stop
the job when the study's pruner says so.

A metric the recipe never reports is a fault of the study's setup, not of this trial: it
is recorded on the trial as fatal (the study stops, naming the metrics there are).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from hone.errors import UserError
from hone.tracking.start import workspace_of
from hone.tracking.tracker import get_tracker
from hone.tune.choices import make_pruner
from hone.tune.storage import study_storage
from hone.tune.study import FATAL_ATTR

__all__ = ["reporter"]


def reporter(config: Mapping[str, Any]) -> Callable[[int, int, dict[str, float]], str | None]:
    import optuna

    from hone.tune import quiet_optuna

    quiet_optuna()
    db = get_tracker(workspace_of(str(config["workspace"]))).db
    name = str(config["study"])
    pruner_name = str(config["pruner"])
    metric = str(config["metric"])
    study = optuna.load_study(
        study_name=name,
        storage=study_storage(db, name),
        sampler=optuna.samplers.RandomSampler(),  # not used: the trial's params are chosen
        pruner=make_pruner(pruner_name, int(config.get("pruner_epochs", config.get("epochs", 1)))),
    )
    trial = optuna.Trial(study, int(config["trial_id"]))
    epochs = int(config.get("epochs", 1))
    reported = set(study._storage.get_trial(trial._trial_id).intermediate_values)

    def hook(epoch: int, step: int, metrics: dict[str, float]) -> str | None:
        if metric not in metrics:
            names = ", ".join(sorted(metrics)) or "nothing"
            message = (
                f"--metric {metric}: the trial reports no such metric at the end of an epoch "
                f"(it reports {names})"
            )
            study._storage.set_trial_system_attr(trial._trial_id, FATAL_ATTR, message)
            raise UserError(message)
        value = metrics[metric]
        if not math.isfinite(value):
            return None  # the loop stops a non-finite loss itself; a NaN metric is not judged
        if epoch not in reported:  # a restarted job's workers repeat an epoch: once is enough
            trial.report(value, epoch)
            reported.add(epoch)
        # The last epoch is the trial's end: stopping there saves nothing, so it completes.
        if epoch < epochs and trial.should_prune():
            return f"pruned by the {pruner_name} pruner at epoch {epoch}: {metric} {value:.6g}"
        return None

    return hook
