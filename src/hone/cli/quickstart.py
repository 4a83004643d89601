"""``hone quickstart``: the main job, end to end on the embedded default (SQLite + files).

For now: scikit-learn's bundled digits imported as a dataset version, a normalized version
derived from it (fitted on train), and a small real PyTorch training on that version,
tracked by hone. Later issues grow this into the whole loop (registry, serving, feedback).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hone.cli.output import console, fmt_number
from hone.data import import_dataset, loader, normalize
from hone.store.setup import init_workspace
from hone.tracking.queries import get_run
from hone.tracking.start import start_run

__all__ = ["quickstart"]


def quickstart(
    workspace: Path = typer.Option(
        Path("demo-workspace"), "--workspace", "-w", help="Workspace folder to create or reuse."
    ),
    epochs: int = typer.Option(15, min=1, help="Training epochs."),
    lr: float = typer.Option(0.01, min=1e-6, help="Learning rate."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Train a small network on the bundled digits data and track it with hone."""
    ws, result = init_workspace(workspace)
    console.print(f"[bold]workspace[/] {ws.home}  (schema {result.after})")
    import torch

    torch.manual_seed(seed)
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
    x_test, y_test = data.to_numpy("test")
    test_x = torch.tensor(x_test, dtype=torch.float32)
    test_y = torch.tensor(y_test, dtype=torch.long)
    params: dict[str, Any] = {
        "model": "mlp-64-128-10",
        "epochs": epochs,
        "lr": lr,
        "batch_size": 64,
        "optimizer": "adam",
        "seed": seed,
        "data": data.ref,
        "train_rows": data.splits["train"],
    }
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    started = time.perf_counter()
    with start_run(
        "quickstart-digits", params=params, tags={"source": "hone quickstart"}, workspace=ws
    ) as run:
        step = 0
        with Progress(
            TextColumn("[bold]training[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("train", total=epochs, status="")
            batches = loader(data, "train", 64, seed=seed)  # records the input
            run.log_input(data, "test")
            for epoch in range(epochs):
                model.train()
                batches.set_epoch(epoch)
                for x, y in batches:
                    optimizer.zero_grad()
                    loss = loss_fn(model(x.float()), y.long())
                    loss.backward()
                    optimizer.step()
                    run.log_metric("train/loss", loss.item(), step=step)
                    step += 1
                model.eval()
                with torch.no_grad():
                    logits = model(test_x)
                    test_loss = loss_fn(logits, test_y).item()
                    acc = (logits.argmax(1) == test_y).float().mean().item()
                run.log_metrics({"test/loss": test_loss, "test/acc": acc}, step=epoch)
                progress.update(task, advance=1, status=f"test acc {acc:.3f}")
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "model.pt"
            torch.save(model.state_dict(), weights)
            run.log_artifact(weights)
    elapsed = time.perf_counter() - started
    recorded = get_run(run._tracker.db, run.id)
    console.print(
        f"\n[bold green]run {recorded.id}[/] {recorded.status.value} in {elapsed:.1f}s: "
        f"{len(recorded.params)} params, {step + 2 * epochs} metric points, "
        f"{len(recorded.artifacts)} artifact(s); trained on "
        f"{', '.join(sorted({i.ref for i in recorded.inputs}))}"
    )
    for key in sorted(recorded.metrics):
        console.print(f"  {key:<12} {fmt_number(recorded.metrics[key].value)}")
    home = f"HONE_HOME={ws.home}"
    hone = _command_name()
    console.print("\nLook at it:")
    for command in (
        "runs list",
        f"runs show {recorded.id[:12]}",
        f"runs metrics {recorded.id[:12]} test/acc",
        "runs list -f \"metrics.test/acc > 0.9\" -o 'metrics.test/acc desc'",
        "data log digits",
        f"data show {raw.ref}",
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
