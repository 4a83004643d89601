"""``hone quickstart``: the main job, end to end on the embedded default (SQLite + files).

For now: a small real PyTorch training on scikit-learn's bundled digits, tracked by hone.
Later issues grow this into the whole loop (data versions, registry, serving, feedback).
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
from hone.store.setup import init_workspace
from hone.tracking.queries import get_run
from hone.tracking.run import start_run

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
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.manual_seed(seed)
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x / 16.0, y, test_size=0.2, random_state=seed, stratify=y
    )
    tensors = {
        name: torch.tensor(array, dtype=torch.float32 if name.startswith("x") else torch.long)
        for name, array in (
            ("x_train", x_train),
            ("x_test", x_test),
            ("y_train", y_train),
            ("y_test", y_test),
        )
    }
    params: dict[str, Any] = {
        "model": "mlp-64-128-10",
        "epochs": epochs,
        "lr": lr,
        "batch_size": 64,
        "optimizer": "adam",
        "seed": seed,
        "data": "sklearn:digits",
        "train_rows": len(y_train),
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
            for epoch in range(epochs):
                model.train()
                order = torch.randperm(len(tensors["y_train"]))
                for start in range(0, len(order), 64):
                    idx = order[start : start + 64]
                    optimizer.zero_grad()
                    loss = loss_fn(model(tensors["x_train"][idx]), tensors["y_train"][idx])
                    loss.backward()
                    optimizer.step()
                    run.log_metric("train/loss", loss.item(), step=step)
                    step += 1
                model.eval()
                with torch.no_grad():
                    logits = model(tensors["x_test"])
                    test_loss = loss_fn(logits, tensors["y_test"]).item()
                    acc = (logits.argmax(1) == tensors["y_test"]).float().mean().item()
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
        f"{len(recorded.artifacts)} artifact(s)"
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
