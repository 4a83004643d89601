"""``hone train``: a recipe on a dataset version, in one process or many, as one run."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import typer

from hone.cli.output import console, count_progress, fmt_number, print_json
from hone.cli.state import state
from hone.errors import UserError, ValidationError
from hone.store.database import Database
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.entities import RunStatus
from hone.tracking.queries import get_run

if TYPE_CHECKING:
    from hone.train.launch import Outcome

__all__ = ["Watcher", "train"]

_SHOWN = (("train/loss", "loss"), ("val/acc", "val acc"))


def train(
    recipe: str = typer.Argument(
        None, help="builtin:cnn, builtin:mlp, package.module[:object] or file.py[:object]."
    ),
    data: str = typer.Option(None, "--data", "-d", help="Dataset version, e.g. digits@latest."),
    param: list[str] = typer.Option([], "--param", "-p", help="name=value (repeatable)."),
    nproc_per_node: int = typer.Option(1, "--nproc-per-node", help="Worker processes here."),
    nnodes: int = typer.Option(1, "--nnodes", help="Machines in the job."),
    node_rank: int = typer.Option(0, "--node-rank", help="This machine (0 owns the run)."),
    rdzv_endpoint: str = typer.Option(
        None, "--rdzv-endpoint", help="HOST:PORT of node rank 0 (with --nnodes > 1)."
    ),
    rdzv_id: str = typer.Option("", "--rdzv-id", help="Job id shared by the nodes."),
    local_addr: str = typer.Option(
        None, "--local-addr", help="This node's address as the others reach it."
    ),
    join_timeout: int = typer.Option(300, "--join-timeout", help="Seconds to wait for nodes."),
    max_restarts: int = typer.Option(0, "--max-restarts", help="Restarts after a failure."),
    resume: str = typer.Option(None, "--resume", help="Continue this run from its checkpoint."),
    experiment: str = typer.Option("train", "--experiment", "-e", help="Experiment name."),
    name: str = typer.Option(None, "--name", help="Run name."),
    json_out: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Train RECIPE on a dataset version, tracked as one run."""
    # PyTorch loads only for this command: every other hone command starts without it.
    from hone.train.launch import Topology, check_names, launch, prepare
    from hone.train.params import parse_overrides

    topology = Topology(
        nproc_per_node=nproc_per_node,
        nnodes=nnodes,
        node_rank=node_rank,
        rdzv_endpoint=rdzv_endpoint,
        rdzv_id=rdzv_id,
        local_addr=local_addr,
        max_restarts=max_restarts,
        join_timeout=join_timeout,
    )
    topology.check()
    check_names(experiment, name)
    overrides: dict[str, Any] = parse_overrides(param)
    ws = state.opened()
    if resume is not None:
        recipe, data, overrides = _from_run(resume, recipe, data, overrides)
    if not recipe or not data:
        raise ValidationError("give a RECIPE and --data NAME@VERSION (or --resume RUN)")
    with console.status("checking the recipe and the data …"):
        job = prepare(recipe, data, overrides, world_size=topology.world_size, workspace=ws)
    if not json_out:
        where = f"{topology.world_size} process(es)" + (
            f" on {topology.nnodes} nodes" if topology.nnodes > 1 else ""
        )
        console.print(f"[bold]train[/] {job.recipe.ref} on {job.version.ref}, {where}")
    watcher = Watcher(state.tracker().db, enabled=not json_out)
    try:
        outcome = launch(
            job,
            topology,
            experiment=experiment,
            name=name,
            resume=resume,
            on_start=watcher.start,
        )
    finally:
        watcher.stop()
    _report(outcome, json_out)
    if outcome.status is not RunStatus.FINISHED:
        raise typer.Exit(130 if outcome.status is RunStatus.KILLED else 1)


def _from_run(
    run_ref: str, recipe: str | None, data: str | None, overrides: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """A resumed run trains what it trained: its recipe, data and params."""
    from hone.train.launch import JOB_PARAMS
    from hone.train.params import declare
    from hone.train.recipes import load_recipe

    if recipe or data or overrides:
        raise ValidationError(
            "--resume continues a run with its own recipe, data and params: give none of them"
        )
    found = get_run(state.tracker().db, run_ref)
    if found.tags.get("hone.kind") != "train" or not all(k in found.params for k in JOB_PARAMS):
        raise UserError(f"run {found.id} was not started by hone train: nothing to resume")
    recipe_ref = found.params["recipe"]
    declared = declare(load_recipe(recipe_ref).params, recipe_ref)
    # What the workers recorded of how they ran (world_size, ...) is not a hyperparameter.
    params = {k: v for k, v in found.params.items() if k in declared}
    return recipe_ref, found.params["data"], params


class Watcher:
    """A progress bar fed from the store (where rank 0's metrics land about once a
    second), so it works the same for one process, many, or another machine's rank 0."""

    def __init__(self, db: Database, enabled: bool = True) -> None:
        self.db, self.enabled = db, enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, run_id: str) -> None:
        if not self.enabled:
            return
        console.print(f"[bold]run[/]   {run_id}")
        self._thread = threading.Thread(target=self._watch, args=(run_id,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self, run_id: str) -> None:
        db = self.db
        with count_progress("training") as progress:
            task = progress.add_task("train", total=None, status="starting workers …")
            while not self._stop.wait(0.5):
                try:
                    run = get_run(db, run_id)
                except Exception:  # the store is busy or away a moment: try again
                    continue
                total = run.params.get("total_steps")
                step = max((m.step for m in run.metrics.values()), default=0)
                shown = [
                    f"{label} {run.metrics[key].value:.3f}"
                    for key, label in _SHOWN
                    if key in run.metrics
                ]
                epoch = run.metrics.get("epoch")
                if epoch is not None:
                    shown.insert(0, f"epoch {int(epoch.value)}")
                progress.update(
                    task,
                    completed=step,
                    total=int(total) if total and total.isdigit() else None,
                    status="  ".join(shown) or "training …",
                )


def _report(outcome: Outcome, json_out: bool) -> None:
    db = state.tracker().db
    checkpoints = list_checkpoints(db, outcome.run_id) if outcome.run_id else []
    if json_out:
        print_json(
            {
                "run_id": outcome.run_id,
                "status": outcome.status.value,
                "error": outcome.error,
                "metrics": outcome.metrics,
                "checkpoints": [c.to_dict() for c in checkpoints],
            }
        )
        return
    style = "green" if outcome.status is RunStatus.FINISHED else "red"
    whose = f"run {outcome.run_id}" if outcome.run_id else "(this node; node rank 0 owns the run)"
    console.print(f"\n[bold {style}]{outcome.status.value}[/] {whose}")
    if outcome.error:
        console.print(f"  error: {outcome.error}", markup=False)
    for key in sorted(outcome.metrics):
        console.print(f"  {key:<18} {fmt_number(outcome.metrics[key])}")
    if checkpoints:
        steps = ", ".join(str(c.step) for c in checkpoints)
        console.print(
            f"  checkpoints at steps {steps} (hone runs checkpoints {outcome.run_id[:12]})"
        )
