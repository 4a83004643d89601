"""``hone quickstart``: the main job, end to end on the embedded default (SQLite + files).

For now: scikit-learn's bundled digits imported as a dataset version, a normalized version
derived from it (fitted on train), and the builtin CNN trained on that version by two
synchronous worker processes (DDP through torchrun), tracked as one run with its
checkpoints. Later issues grow this into the whole loop (registry, serving, feedback).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import typer

from hone.cli.output import console, fmt_number
from hone.cli.train import Watcher
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
    epochs: int = typer.Option(10, min=1, help="Training epochs."),
    lr: float = typer.Option(0.01, min=1e-6, help="Learning rate."),
    seed: int = typer.Option(0, help="Random seed."),
    workers: int = typer.Option(2, min=1, max=64, help="Synchronous worker processes."),
) -> None:
    """Train the builtin CNN on the bundled digits with two workers, tracked by hone."""
    from hone.train.launch import Topology, launch, prepare

    ws, result = init_workspace(workspace)
    console.print(f"[bold]workspace[/] {ws.home}  (schema {result.after})")
    with console.status("importing sklearn:digits …"):
        raw = import_dataset(
            "digits",
            "sklearn:digits",
            split="train=0.8,test=0.2",
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
    params = {"epochs": epochs, "lr": lr, "seed": seed, "batch_size": 64}
    job = prepare("builtin:cnn", f"{data.name}@{data.id}", params, world_size=workers, workspace=ws)
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
    home = f"HONE_HOME={ws.home}"
    hone = _command_name()
    console.print("\nLook at it:")
    for command in (
        "runs list",
        f"runs show {recorded.id[:12]}",
        f"runs metrics {recorded.id[:12]} val/acc",
        f"runs checkpoints {recorded.id[:12]}",
        "runs list -f \"metrics.val/acc > 0.9\" -o 'metrics.val/acc desc'",
        "data log digits",
        f"data show {raw.ref}",
        f"train --resume {recorded.id[:12]}",
    ):
        # soft_wrap: commands stay on one line, to be copied whole.
        console.print(f"  {home} {hone} {command}", soft_wrap=True, highlight=False)


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
