"""Running a study: check everything, open the study (create, join or resume), run its
trials in this process or in ``parallel`` worker processes, and record the result.

Cores: the machine's cores are divided among the study's processes on it, then among each
trial's ranks: a trial of ``nproc_per_node`` K in a study of ``parallel`` P gives each rank
``cores / (P * K)`` intra-op threads (``OMP_NUM_THREADS``, when set, is taken as is).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from hone.config import Workspace
from hone.errors import ValidationError
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.entities import RunStatus
from hone.tracking.start import start_run
from hone.tracking.tracker import get_tracker
from hone.tracking.validation import check_name
from hone.tune import signals, studies
from hone.tune.choices import DIRECTIONS, PRUNERS, SAMPLERS, check_choice
from hone.tune.driver import StudyStopped, work
from hone.tune.objectives import FunctionTrials, RecipeTrials
from hone.tune.space import Space, callable_name, parse_space
from hone.tune.study import (
    ERROR_ATTR,
    PRUNED_AT_ATTR,
    RUN_ATTR,
    WORKER_ATTR,
    OpenStudy,
    check_study_name,
    fail_interrupted,
    is_interrupted,
    open_study,
)

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Plan",
    "StudyOutcome",
    "describe_trial",
    "optimize",
    "plan_recipe_study",
    "run_plan",
]

log = logging.getLogger("hone.tune")

MAX_TRIALS = 100_000
MAX_PARALLEL = 256
#: Optuna's samplers seed NumPy's generator, which takes 32 bits.
MAX_SEED = 2**32 - 1
#: The environment variable a worker process reads its part of the study from.
JOB_ENV = "HONE_TUNE_JOB"
#: Seconds the workers have to stop in good order after Ctrl-C, before they are killed.
STOP_GRACE_S = 150.0
#: Which of the study's worker processes it is (1, 2, ...): its sampler's seed differs.
INDEX_ENV = "HONE_TUNE_WORKER"
_MAX_WORDS = ("acc", "f1", "auc", "precision", "recall", "r2")


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


@dataclass
class Plan:
    """A recipe study, checked before anything is recorded."""

    name: str
    config: dict[str, Any]
    space: Space
    objective: RecipeTrials
    workspace: Workspace
    budget: int | None
    parallel: int
    timeout: float | None
    resume: bool
    space_given: dict[str, Any] | None = None
    version_ref: str = ""
    notes: list[str] = field(default_factory=list)
    baseline: dict[str, Any] | None = None  # a new study's first trial


def default_direction(metric: str) -> str:
    return "maximize" if any(w in metric.lower() for w in _MAX_WORDS) else "minimize"


def check_counts(trials: int | None, parallel: int, timeout: float | None) -> None:
    if trials is not None and (
        isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS
    ):
        raise ValidationError(f"--trials {trials!r}: give a whole number from 1 to {MAX_TRIALS:,}")
    if (
        isinstance(parallel, bool)
        or not isinstance(parallel, int)
        or not 1 <= parallel <= MAX_PARALLEL
    ):
        raise ValidationError(
            f"--parallel {parallel!r}: give a whole number from 1 to {MAX_PARALLEL}"
        )
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValidationError(f"--timeout {timeout!r}: give a number of seconds above 0")


def check_seed(seed: int | None) -> None:
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        raise ValidationError(f"--seed {seed!r}: give a whole number from 0 to {MAX_SEED:,}")


def plan_recipe_study(
    recipe: str,
    data: str,
    *,
    workspace: Workspace,
    trials: int | None = None,
    parallel: int = 1,
    sampler: str = "tpe",
    pruner: str = "median",
    metric: str | None = None,
    direction: str | None = None,
    timeout: float | None = None,
    study: str | None = None,
    resume: bool = False,
    params: Mapping[str, Any] | None = None,
    space: Mapping[str, Any] | None = None,
    nproc_per_node: int = 1,
    max_restarts: int = 0,
    seed: int | None = None,
    experiment: str = "tune",
    baseline: bool = True,
) -> Plan:
    """Every check that needs no trial: options, recipe, data, space, params. With
    ``baseline``, a new study's first trial tries the recipe's own values of the searched
    params (when they lie in the space): the result to beat."""
    from hone.train.launch import Topology, prepare
    from hone.train.params import declare, resolve
    from hone.train.recipes import load_recipe

    check_counts(trials, parallel, timeout)
    check_choice(sampler, SAMPLERS, "--sampler")
    check_choice(pruner, PRUNERS, "--pruner")
    check_name(experiment, "experiment")
    check_seed(seed)
    if metric is not None and (not isinstance(metric, str) or not metric.strip()):
        raise ValidationError("--metric: give the name of a metric the loop reports, e.g. val/acc")
    if direction is not None:
        check_choice(direction, DIRECTIONS, "--direction")
    Topology(nproc_per_node=nproc_per_node, max_restarts=max_restarts).check()
    gpu_slices(parallel, nproc_per_node)  # refused now if the GPUs cannot go round
    loaded = load_recipe(recipe)
    fixed = dict(params or {})
    job = prepare(recipe, data, fixed, world_size=nproc_per_node, workspace=workspace)
    metric = metric or ("val/acc" if job.spec.classes is not None else "val/loss")
    # What an epoch's end reports (a trial is judged there): known now, refused now.
    judged = [m for m in job.logged if m not in ("train/loss", "epoch", "lr")]
    if metric not in judged:
        raise ValidationError(
            f"--metric {metric}: the loop does not report it at an epoch's end for this "
            f"recipe and data; it reports {', '.join(judged)}"
        )
    direction = direction or default_direction(metric)
    if space is not None:
        parsed = parse_space(space, "--space")
    else:
        parsed = parse_space(getattr(loaded.obj, "search_space", None), f"recipe {loaded.ref}")
    declared = declare(loaded.params, loaded.ref)
    notes: list[str] = []
    if parsed.dims is not None:
        _check_dims(parsed, declared, fixed)
    first = None
    if baseline and sampler != "grid":
        first = parsed.baseline({**declared, **job.params})
        if first is not None:
            shown = ", ".join(f"{k}={v}" for k, v in first.items())
            notes.append(f"trial 0 tries the recipe's own values ({shown}): the result to beat")
    budget = trials
    if sampler == "grid":
        size = parsed.grid_size()
        if budget is None or budget > size:
            notes.append(f"the grid has {size} point(s): the study runs {size} trial(s)")
            budget = size
    name = check_study_name(study) if study is not None else _new_name(loaded.ref)
    epochs = int(job.params.epochs)
    config: dict[str, Any] = {
        "kind": "recipe",
        "recipe": loaded.ref,
        "data": job.spec.ref,
        "space": parsed.fingerprint,
        "space_json": space,  # None: the recipe's own
        "metric": metric,
        "direction": direction,
        "sampler": sampler,
        "pruner": pruner,
        "seed": seed,
        "params": {k: job.params[k] for k in sorted(fixed)},
        "epochs": epochs,
        "experiment": experiment,
    }
    # What each trial's params are checked against (values as the loop takes them).
    resolve(declared, fixed, where="-p")
    objective = RecipeTrials(
        recipe=loaded.ref,
        data=job.spec.ref,
        fixed=dict(config["params"]),
        metric=metric,
        direction=direction,
        pruner=pruner,
        epochs=epochs,
        nproc_per_node=nproc_per_node,
        max_restarts=max_restarts,
        experiment=experiment,
    )
    return Plan(
        name=name,
        config=config,
        space=parsed,
        objective=objective,
        workspace=workspace,
        budget=budget,
        parallel=parallel,
        timeout=timeout,
        resume=resume,
        space_given=dict(space) if space is not None else None,
        version_ref=job.version.ref,
        notes=notes,
        baseline=first,
    )


def _check_dims(space: Space, declared: Mapping[str, Any], fixed: Mapping[str, Any]) -> None:
    from hone.train.params import resolve

    assert space.dims is not None
    for name, dim in space.dims.items():
        if name in fixed:
            raise ValidationError(
                f"{name} is both searched ({space.where}) and fixed (-p {name}=...): drop one"
            )
        if name not in declared:
            raise ValidationError(
                f"{space.where} searches {name!r}, which is not a param of the recipe; it "
                f"takes {', '.join(sorted(declared))}"
            )
        values = list(dim) if isinstance(dim, tuple) else [dim.low, dim.high]
        if not isinstance(dim, tuple) and dim.integer:
            values = [int(v) for v in values]
        for value in values:
            resolve(declared, {name: value}, where=f"{space.where}, {name}")


def gpu_slices(parallel: int, nproc: int) -> list[str] | None:
    """On a machine with GPUs: the devices each of ``parallel`` worker processes may use
    (``CUDA_VISIBLE_DEVICES`` for each), ``nproc`` apiece, none shared; None without GPUs."""
    import torch

    if not torch.cuda.is_available():
        return None
    count = torch.cuda.device_count()
    if parallel * nproc > count:
        raise ValidationError(
            f"--parallel {parallel} x --nproc-per-node {nproc}: this machine has {count} "
            f"GPU(s) and each trial's process takes one of its own; run at most {count} at "
            "once (or hide the GPUs with CUDA_VISIBLE_DEVICES= to tune on the CPU)"
        )
    given = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    visible = [d.strip() for d in given.split(",")] if given else [str(i) for i in range(count)]
    return [",".join(visible[i * nproc : (i + 1) * nproc]) for i in range(parallel)]


def _new_name(recipe_ref: str) -> str:
    stem = recipe_ref.replace("builtin:", "").rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    stem = "".join(c if c.isalnum() or c in "_.-" else "-" for c in stem).strip("-.") or "study"
    return f"{stem[:60]}-{time.strftime('%Y%m%d-%H%M%S')}"


# Running ------------------------------------------------------------------------------


Watch = Callable[[OpenStudy], Callable[[], None]]


def run_plan(plan: Plan, *, watch: Watch | None = None) -> StudyOutcome:
    """Open the plan's study and run its trials (here, or in ``parallel`` processes);
    ``watch(study)`` starts a progress display and returns its stop."""
    from hone.tune import quiet_optuna

    quiet_optuna()
    db = get_tracker(plan.workspace).db

    def create_run(config: dict[str, Any]) -> str:
        return _create_study_run(plan.workspace, plan.name, config, plan.space)

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
    study_run = _own_study_run(plan.workspace, study)
    deadline = time.monotonic() + plan.timeout if plan.timeout else None
    stop_watch = watch(study) if watch is not None else None
    state, error = "complete", None
    try:
        if plan.parallel == 1:
            with signals.interruptible():
                work(study, plan.objective, deadline=deadline)
        else:
            error = _run_processes(plan, study, deadline)
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


def _run_processes(plan: Plan, study: OpenStudy, deadline: float | None) -> str | None:
    """``parallel`` worker processes on the study; the first fatal error, if any."""
    job = {
        "workspace": str(plan.workspace.home),
        "study": study.name,
        "space": plan.space_given,
        "objective": {
            "recipe": plan.objective.recipe,
            "data": plan.objective.data,
            "fixed": plan.objective.fixed,
            "metric": plan.objective.metric,
            "direction": plan.objective.direction,
            "pruner": plan.objective.pruner,
            "epochs": plan.objective.epochs,
            "nproc_per_node": plan.objective.nproc_per_node,
            "max_restarts": plan.objective.max_restarts,
            "experiment": plan.objective.experiment,
        },
        "seconds": None if deadline is None else max(deadline - time.monotonic(), 0.0),
    }
    env = dict(os.environ)
    env[JOB_ENV] = json.dumps(job)
    env.setdefault("OMP_NUM_THREADS", str(_threads(plan.parallel, plan.objective.nproc_per_node)))
    env["PYTHONUNBUFFERED"] = "1"
    devices = gpu_slices(plan.parallel, plan.objective.nproc_per_node)
    procs: list[subprocess.Popen[str]] = []
    errors: list[str] = []
    interrupted = threading.Event()
    timers: list[threading.Timer] = []

    def kill(sig: int) -> None:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)

    def stop(signum: int, frame: FrameType | None) -> None:
        if interrupted.is_set():  # a second Ctrl-C: now
            kill(signal.SIGKILL)
            return
        interrupted.set()
        kill(signal.SIGTERM)  # each ends its trial as interrupted and gives its budget back
        # A worker that cannot finish that (a store that does not answer) is killed later.
        timer = threading.Timer(STOP_GRACE_S, kill, args=(signal.SIGKILL,))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    # (installed before the first worker starts: a Ctrl-C at any moment stops them all)
    previous = (
        {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        if threading.current_thread() is threading.main_thread()
        else {}
    )
    readers: list[threading.Thread] = []
    codes: dict[int, int] = {}
    try:
        for index in range(plan.parallel):
            if interrupted.is_set():
                break
            proc = subprocess.Popen(
                [sys.executable, "-m", "hone.tune.worker"],
                env={
                    **env,
                    INDEX_ENV: str(index + 1),
                    **({"CUDA_VISIBLE_DEVICES": devices[index]} if devices else {}),
                },
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # Ctrl-C reaches this process, which stops them
                preexec_fn=_die_with_parent(),
            )
            procs.append(proc)
            reader = threading.Thread(target=_relay, args=(proc, errors), daemon=True)
            reader.start()
            readers.append(reader)
        while len(codes) < len(procs):
            for proc in procs:
                code = proc.poll()
                if code is None or proc.pid in codes:
                    continue
                codes[proc.pid] = code
                if code not in (0, 3, 130):
                    # It died (killed, out of memory): its trial is failed as interrupted
                    # and its budget given back at once, for the others to run.
                    reap(study, proc.pid)
                    log.warning(
                        "hone: a worker process of study %s %s; its trial was failed as "
                        "interrupted and its budget given back",
                        study.name,
                        _how_it_ended(code),
                    )
            time.sleep(0.2)
        for reader in readers:
            reader.join(timeout=5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for timer in timers:
            timer.cancel()
        for proc in procs:
            if proc.stderr is not None:
                proc.stderr.close()
    if interrupted.is_set():
        for proc in procs:  # one killed before it could record its trial's end
            reap(study, proc.pid)
        raise KeyboardInterrupt
    if any(code == 3 for code in codes.values()):
        return errors[0] if errors else "a worker process stopped the study"
    return None


def _how_it_ended(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"failed (exit {code})"


def reap(study: OpenStudy, pid: int) -> None:
    """The trials a dead worker process of this machine left running: failed as
    interrupted, their budget given back."""
    import optuna

    workers = {
        w.worker
        for w in studies.study_workers(study.db, study.name)
        if w.host == studies.MACHINE and w.pid == pid
    }
    if not workers:
        return
    left = [
        t
        for t in study.optuna.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if t.system_attrs.get(WORKER_ATTR) in workers
    ]
    fail_interrupted(study, left)
    for worker in workers:
        with contextlib.suppress(Exception):
            studies.leave(study.db, study.name, worker)


def _relay(process: subprocess.Popen[str], errors: list[str]) -> None:
    """A worker's stderr, passed on; the line that says why it stopped is kept."""
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("hone tune: "):
            errors.append(line[len("hone tune: ") :].strip())
        else:
            sys.stderr.write(line)


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when this process dies
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def _threads(parallel: int, nproc: int) -> int:
    from hone.train.distributed import cpu_cores

    return max(1, cpu_cores() // max(parallel * nproc, 1))


# The study's run and result ------------------------------------------------------------


def _create_study_run(workspace: Workspace, name: str, config: dict[str, Any], space: Space) -> str:
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


def _own_study_run(workspace: Workspace, study: OpenStudy) -> Any:
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


# The Python API for functions -----------------------------------------------------------


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
    from hone.tune.space import Space

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
        else _new_name(getattr(objective, "__name__", "study"))
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
        return _create_study_run(ws, name, cfg, space)

    opened, how = open_study(
        ws, db, name, config, space, budget=n_trials, resume=resume, create_run=create_run
    )
    try:
        study_run = _own_study_run(ws, opened)
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
