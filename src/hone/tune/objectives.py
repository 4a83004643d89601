"""What a trial runs: a recipe trained by hone's standard loop (``hone tune``), or a Python
function of Optuna's trial (``hone.tune.optimize``). Either way the trial is a run, the
child of the study's run, with its params and metrics."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hone.errors import HoneError, ValidationError
from hone.tracking.entities import RunStatus
from hone.tune import signals
from hone.tune.driver import TrialOutcome
from hone.tune.study import FATAL_ATTR, RUN_ATTR, OpenStudy

if TYPE_CHECKING:
    import optuna

__all__ = ["FunctionTrials", "RecipeTrials", "best_of"]

#: The hook the training loop calls at every epoch's end (loaded by name: see train.Hook).
PRUNING_HOOK = "hone.tune.pruning:reporter"


def best_of(values: dict[int, float], direction: str) -> float | None:
    finite = [v for v in values.values() if math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if direction == "maximize" else min(finite)


def _finite(value: Any) -> float | None:
    """A trial's value as a float, if it is a finite number (NumPy's and PyTorch's
    scalars included; an int too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def trial_tags(study: OpenStudy, trial: optuna.Trial) -> dict[str, str]:
    return {"hone.study": study.name, "hone.trial": str(trial.number)}


@dataclass(frozen=True)
class RecipeTrials:
    """Each trial trains the recipe with the params the trial chose (beside the fixed
    ones), keeping its best checkpoint by the study's metric; the loop reports the metric
    at every epoch's end and stops when the pruner says so. The trial's value is the
    metric at its best epoch (the one its best checkpoint holds)."""

    recipe: str
    data: str  # name@full version id
    fixed: dict[str, Any]
    metric: str
    direction: str
    pruner: str
    epochs: int
    nproc_per_node: int = 1
    max_restarts: int = 0
    experiment: str = "tune"

    def __call__(self, trial: optuna.Trial, study: OpenStudy) -> TrialOutcome:
        from hone.tracking.queries import get_run
        from hone.tracking.tracker import get_tracker
        from hone.train.launch import Hook, Topology, launch, prepare
        from hone.train.loop import STOPPED_AT_TAG, STOPPED_TAG

        chosen = study.space.suggest(trial)
        overrides = {
            **self.fixed,
            **chosen,
            "best_metric": self.metric,
            "best_mode": "max" if self.direction == "maximize" else "min",
        }
        topology = Topology(nproc_per_node=self.nproc_per_node, max_restarts=self.max_restarts)
        try:
            job = prepare(
                self.recipe,
                self.data,
                overrides,
                world_size=topology.world_size,
                workspace=study.workspace,
                where="params",
            )
        except ValidationError as exc:
            return TrialOutcome("failed", error=f"its params were refused: {exc}")
        hook = Hook(
            PRUNING_HOOK,
            {
                "workspace": str(study.workspace.home),
                "study": study.name,
                "trial_id": trial._trial_id,
                "metric": self.metric,
                "pruner": self.pruner,
                "epochs": int(job.params.epochs),  # this trial's (epochs may be searched)
                "pruner_epochs": self.epochs,  # the study's: every trial's rungs the same
            },
        )

        recorded: list[str] = []

        def started(run_id: str) -> None:  # recorded at once: a killed trial names its run
            study.optuna._storage.set_trial_system_attr(trial._trial_id, RUN_ATTR, run_id)
            recorded.append(run_id)

        outcome = launch(
            job,
            topology,
            experiment=self.experiment,
            name=f"{study.name}-{trial.number}",
            parent=study.run_id,
            tags=trial_tags(study, trial),
            hook=hook,
            on_start=started,
            on_trained=signals.defer,  # from here the trial's record must not be lost
        )
        signals.defer()  # the trial is done: its record must not be lost to a Ctrl-C now
        frozen = study.optuna._storage.get_trial(trial._trial_id)
        run_id = outcome.run_id or None
        if outcome.status is RunStatus.KILLED:
            return TrialOutcome(
                "interrupted", run_id=run_id, run_recorded=bool(recorded), error="interrupted"
            )
        if outcome.status is not RunStatus.FINISHED:
            fatal = frozen.system_attrs.get(FATAL_ATTR)
            return TrialOutcome(
                "failed",
                run_id=run_id,
                run_recorded=bool(recorded),
                error=outcome.error or "training failed",
                fatal=str(fatal) if fatal else None,
            )
        tags = get_run(get_tracker(study.workspace).db, outcome.run_id).tags
        value = best_of(frozen.intermediate_values, self.direction)
        if tags.get(STOPPED_TAG):
            step, _, epoch = tags.get(STOPPED_AT_TAG, "0:0").partition(":")
            return TrialOutcome(
                "pruned",
                value=value,
                run_id=run_id,
                run_recorded=bool(recorded),
                pruned_at={"step": int(step or 0), "epoch": int(epoch or 0)},
            )
        if value is None:
            return TrialOutcome(
                "failed",
                run_id=run_id,
                run_recorded=bool(recorded),
                error=f"the trial reported no finite {self.metric}",
            )
        return TrialOutcome("complete", value=value, run_id=run_id, run_recorded=bool(recorded))


@dataclass(frozen=True)
class FunctionTrials:
    """Each trial calls ``function(trial)`` inside a run of its own (the active run: the
    function may log to it); the run records the params it chose and the value."""

    function: Callable[[optuna.Trial], float]
    metric: str = "value"
    experiment: str = "tune"

    def __call__(self, trial: optuna.Trial, study: OpenStudy) -> TrialOutcome:
        import optuna

        from hone.tracking.start import start_run

        run = start_run(
            self.experiment,
            f"{study.name}-{trial.number}",
            parent=study.run_id,
            tags={"hone.kind": "trial", **trial_tags(study, trial)},
            workspace=study.workspace,
        )
        trial.storage.set_trial_system_attr(trial._trial_id, RUN_ATTR, run.id)
        try:
            value = self.function(trial)
            signals.defer()
        except optuna.TrialPruned as exc:
            signals.defer()
            steps = sorted(trial.storage.get_trial(trial._trial_id).intermediate_values)
            step = steps[-1] if steps else 0
            self._params(run, trial)
            run.set_tags({"hone.stopped": str(exc) or "pruned", "hone.stopped_at": f"{step}:0"})
            run.end(RunStatus.FINISHED)
            return TrialOutcome(
                "pruned", run_id=run.id, run_recorded=True, pruned_at={"step": step, "epoch": 0}
            )
        except KeyboardInterrupt:
            run.end(RunStatus.KILLED)
            raise
        except HoneError:
            run.end(RunStatus.FAILED)
            raise  # the store or the workspace: not the trial's fault
        except Exception as exc:
            signals.defer()
            error = f"{type(exc).__name__}: {exc}"
            self._params(run, trial)
            run.set_tag("hone.error", error[:4000])
            run.end(RunStatus.FAILED)
            return TrialOutcome("failed", run_id=run.id, run_recorded=True, error=error)
        self._params(run, trial)
        number = _finite(value)
        if number is None:
            error = f"the objective returned {str(value)[:80]}, not a finite number"
            run.set_tag("hone.error", error)
            run.end(RunStatus.FAILED)
            return TrialOutcome("failed", run_id=run.id, run_recorded=True, error=error)
        run.log_metric(self.metric, number, step=0)
        run.end(RunStatus.FINISHED)
        return TrialOutcome("complete", value=number, run_id=run.id, run_recorded=True)

    @staticmethod
    def _params(run: Any, trial: optuna.Trial) -> None:
        if trial.params:
            run.log_params(trial.params)
