"""``hone quickstart``: the main job, end to end on the embedded default (SQLite + files).

For now: scikit-learn's bundled digits imported as a dataset version (train, validation,
test), a normalized version derived from it (fitted on train), a small study of the
builtin CNN's search space (8 trials, 2 at once, median pruning, selected on validation),
the best trial's params trained by two synchronous worker processes (DDP through
torchrun), tracked as one run with its checkpoints and reporting the held-out test split;
then the model registered (``digits@N``, its ONNX export verified against the eager model),
made ``champion`` (through a promotion gate once there is one), loaded back as a predictor
without PyTorch, a few predictions beside the truth, and its lineage; then the whole loop
(``quickstart_loop``): the champion served on loopback, drifted production traffic, labels
sent back, a challenger harvested, trained and promoted, and live accuracy before and
after. ``--json`` prints a summary of it all instead.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import typer

from hone.cli.output import console, fmt_number
from hone.cli.train import Watcher
from hone.config import Workspace
from hone.data import import_dataset, normalize
from hone.errors import HoneError
from hone.store.database import database_for
from hone.store.setup import init_workspace
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.entities import RunStatus
from hone.tracking.queries import get_run

__all__ = ["quickstart"]


def quickstart(
    workspace: Path = typer.Option(
        Path("demo-workspace"), "--workspace", "-w", help="Workspace folder to create or reuse."
    ),
    epochs: int = typer.Option(15, min=1, help="Training epochs."),
    lr: float = typer.Option(0.01, min=1e-6, help="Learning rate (with --trials 0)."),
    seed: int = typer.Option(0, help="Random seed."),
    workers: int = typer.Option(2, min=1, max=64, help="Synchronous worker processes."),
    trials: int = typer.Option(
        8, min=0, max=100, help="Trials of the study before training (0: no study)."
    ),
    trial_epochs: int = typer.Option(8, min=1, help="Epochs of each trial."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary only."),
) -> None:
    """The whole loop on the bundled digits: import, tune, train (two synchronous workers),
    register and export, serve, drifted traffic, labels, retrain, promote, live accuracy."""
    from hone.cli.output import print_json
    from hone.cli.quickstart_loop import live_loop

    started_all = time.perf_counter()
    console.quiet = json_out
    try:
        summary = _quickstart(workspace, epochs, lr, seed, workers, trials, trial_epochs)
        live = live_loop(summary.pop("_ws"), summary.pop("_raw"), seed, workers)
        home = summary.pop("_home")
    finally:
        console.quiet = False
    summary.update(live.to_dict(), seconds=round(time.perf_counter() - started_all, 1))
    if json_out:
        print_json(summary)
        return
    console.print(
        f"\n[bold]lift[/]      live accuracy on drifted traffic: {live.before:.1%} "
        f"(digits@{live.version_before}) → [bold green]{live.after:.1%}[/] "
        f"(digits@{live.version_after}), in {summary['seconds']:.0f} s"
    )
    _look(home, summary["run_id"], summary["trials"])


def _quickstart(
    workspace: Path, epochs: int, lr: float, seed: int, workers: int, trials: int, trial_epochs: int
) -> dict[str, Any]:
    from hone.train.launch import Topology, launch, prepare

    ws, result = init_workspace(workspace)
    console.print(f"[bold]workspace[/] {ws.home}  (schema {result.after})")
    with console.status("importing sklearn:digits …"):
        raw = import_dataset(
            "digits",
            "sklearn:digits",
            # validation: what the study selects on; test: held out, reported at the end
            split="train=0.7,validation=0.1,test=0.2",
            stratify=True,
            seed=seed,
            workspace=ws,
        )
        data = normalize(raw)  # fitted on the train split only, applied when read
    console.print(
        f"[bold]data[/]      {raw.ref} ({raw.rows:,} rows: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(raw.splits.items()))})"
        f" → normalized {data.ref}"
    )
    ref = f"{data.name}@{data.id}"
    params: dict[str, Any] = {"lr": lr}
    if trials:
        params = _study(ws, ref, trials, trial_epochs, seed, workers)
    # The final model reports the held-out test split (the study never saw it).
    params.update(epochs=epochs, seed=seed, batch_size=64, val_split="test")
    job = prepare("builtin:cnn", ref, params, world_size=workers, workspace=ws)
    console.print(f"[bold]train[/]     builtin:cnn, {workers} synchronous worker process(es)")
    started = time.perf_counter()
    watcher = Watcher(database_for(ws.store_uri))
    try:
        outcome = launch(
            job,
            Topology(nproc_per_node=workers),
            experiment="quickstart-digits",
            on_start=watcher.start,
        )
    finally:
        watcher.stop()
    elapsed = time.perf_counter() - started
    if outcome.status is not RunStatus.FINISHED:
        raise HoneError(f"the quickstart's training {outcome.status.value}: {outcome.error}")
    db = database_for(ws.store_uri)
    recorded = get_run(db, outcome.run_id)
    checkpoints = list_checkpoints(db, recorded.id)
    console.print(
        f"\n[bold green]run {recorded.id}[/] {recorded.status.value} in {elapsed:.1f}s: "
        f"{recorded.params['world_size']} workers, {recorded.params['total_steps']} steps, "
        f"trained on {', '.join(sorted({i.ref for i in recorded.inputs}))}"
    )
    accuracy = recorded.metrics.get("val/acc")
    if accuracy is not None:
        console.print(f"  held-out accuracy (test split) [bold]{accuracy.value:.2%}[/]")
    for key in sorted(recorded.metrics):
        console.print(f"  {key:<18} {fmt_number(recorded.metrics[key].value)}")
    console.print(
        f"  checkpoints: {len(checkpoints)} kept, at steps "
        f"{', '.join(str(c.step) for c in checkpoints)} (parameter library)"
    )
    version = _register(ws, recorded.id, raw)
    return {
        "workspace": str(ws.home),
        "run_id": recorded.id,
        "test_accuracy": accuracy.value if accuracy is not None else None,
        "registered": version,
        "trials": trials,
        "_ws": ws,
        "_raw": raw,
        "_home": str(ws.home),
    }


def _look(home_dir: str, run_id: str, trials: int) -> None:
    home = f"HONE_HOME={home_dir}"
    hone = _command_name()
    console.print("\nLook at it:")
    for command in (
        "ui",
        "runs list",
        f"runs show {run_id[:12]}",
        f"runs metrics {run_id[:12]} val/acc",
        f"runs checkpoints {run_id[:12]}",
        "runs list -f \"metrics.val/acc > 0.9\" -o 'metrics.val/acc desc'",
        "data log digits",
        f"train --resume {run_id[:12]}",
        "models list",
        "models show digits@champion",
        "models history digits",
        "predictions stats digits",
        "predictions list digits --labeled",
        "runs list -e loop",
        "serve digits@champion",
        "loop run digits --min-new-labels 100",
        *(["tune list"] if trials else []),
    ):
        # soft_wrap: commands stay on one line, to be copied whole.
        console.print(f"  {home} {hone} {command}", soft_wrap=True, highlight=False)


def _study(
    ws: Workspace, ref: str, trials: int, epochs: int, seed: int, parallel: int
) -> dict[str, Any]:
    """A small study of builtin:cnn's search space (median pruning, ``parallel`` trials at
    once; trial 0 tries the recipe's defaults); the best trial's params."""
    from hone.cli.tune import watch_study
    from hone.tune.plan import plan_recipe_study
    from hone.tune.search import run_plan

    console.print(
        f"[bold]tune[/]      builtin:cnn's search space: {trials} trials of {epochs} epochs, "
        f"{parallel} at once, TPE sampler, median pruning on val/acc (validation split)"
    )
    plan = plan_recipe_study(
        "builtin:cnn",
        ref,
        workspace=ws,
        trials=trials,
        parallel=parallel,
        sampler="tpe",
        pruner="median",
        metric="val/acc",
        seed=seed,
        params={"epochs": epochs, "seed": seed},
        study=f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}",
        experiment="quickstart-digits-tune",
    )
    outcome = run_plan(plan, watch=watch_study)
    if outcome.best is None:
        raise HoneError(f"the quickstart's study {outcome.state}: {outcome.error}")
    best = outcome.best
    counts = outcome.trials
    console.print(
        f"  study {outcome.name}: {counts['complete']} complete, {counts['pruned']} pruned; "
        f"best trial {best['trial']} (val/acc {best['value']:.2%}): "
        + ", ".join(
            f"{k}={fmt_number(v) if isinstance(v, float) else v}"
            for k, v in sorted(best["params"].items())
        )
    )
    return dict(best["params"])


def _register(ws: Workspace, run_id: str, raw: Any) -> str:
    """The run's best checkpoint registered and exported (ONNX, verified), made champion
    (the first time by hand, later through a gate), loaded back, asked, and traced."""
    import hone.models
    from hone.cli.models import lineage_tree

    with console.status("registering, exporting to ONNX and verifying …"):
        registered = hone.models.register(
            "digits", run=run_id, description="hone quickstart", workspace=ws
        )
    version = registered.version
    (onnx,) = registered.exports
    check = onnx.body["verification"]
    console.print(
        f"\n[bold]registry[/]  {version.ref}: ONNX (opset {onnx.body['opset']}, "
        f"{onnx.size:,} bytes, normalize inside) verified against the eager model on "
        f"{check['rows']} {check['split']} rows, max |diff| {check['max_abs_diff']:.1e}"
    )
    champion = {m.name: m.aliases for m in hone.models.models(workspace=ws)}["digits"].get(
        "champion"
    )
    if champion is None:
        hone.models.alias(version.ref, "champion", why="the quickstart's first model", workspace=ws)
        console.print(f"  {version.ref} is champion (the first one)")
    else:
        gate = "accuracy >= champion"
        promoted = hone.models.promote(
            version.ref, "champion", gate, f"{raw.name}@{raw.id}:validation", workspace=ws
        )
        said = "promoted to champion" if promoted.moved else f"stays behind digits@{champion}"
        console.print(f"  {version.ref} {said}: {'; '.join(promoted.account)}", markup=False)
    predictor = hone.models.load("digits@champion", workspace=ws)
    rows, truth = raw.to_numpy("test")
    picked = list(range(0, len(rows), max(1, len(rows) // 8)))[:8]
    answer = predictor.predict(rows[picked])
    assert answer.probabilities is not None and truth is not None
    console.print(
        f"  hone.models.load('digits@champion') → {predictor.ref}, raw pixels in; test rows:"
    )
    for i, row in enumerate(picked):
        label, sure = answer.labels[i], answer.probabilities[i].max()
        mark = "✓" if label == truth[row] else "✗"
        console.print(
            f"    row {row:>3}: predicted {label} ({sure:.0%}), truth {truth[row]} {mark}"
        )
    _, tree = hone.models.show("digits@champion", workspace=ws)
    console.print(lineage_tree(tree))
    return version.ref


def _command_name() -> str:
    """How to call hone from here: ``hone`` if that is on PATH, else the script's path
    (after ``make demo``, .venv/bin is not on PATH)."""
    script = Path(sys.argv[0])
    found = shutil.which("hone")
    if script.name != "hone" or (found and Path(found).resolve() == script.resolve()):
        return "hone"
    try:
        return str(script.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(script.resolve())
