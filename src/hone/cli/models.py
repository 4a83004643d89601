"""``hone models``: register versions, move aliases (by hand or through a promotion gate),
export, evaluate, show lineage, list, history, delete."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from hone.cli.output import console, err_console, fmt_number, fmt_time, print_json
from hone.cli.state import state
from hone.tracking.entities import json_number

__all__ = ["lineage_tree", "models_app"]

models_app = typer.Typer(
    help="The model registry: register, alias, promote, export, evaluate, show, list, history.",
    no_args_is_help=True,
)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _busy(what: str, json_out: bool) -> AbstractContextManager[Any]:
    """A spinner while ``what`` runs, for people; nothing on the way to JSON."""
    return nullcontext() if json_out else console.status(what, spinner="dots")


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    return {k: json_number(v) if isinstance(v, float) else v for k, v in values.items()}


@models_app.command("register")
def register(
    name: str = typer.Argument(..., help="Model name, e.g. digits."),
    run: str = typer.Option(None, "--run", help="The run whose checkpoint to register."),
    checkpoint: str = typer.Option(
        "best", "--checkpoint", help="best (by the run's best_metric), latest, or a step."
    ),
    study: str = typer.Option(None, "--study", help="Register a study's best trial instead."),
    formats: str = typer.Option(
        "onnx", "--format", help="Exports made and verified now: onnx,safetensors,pt2 or none."
    ),
    description: str = typer.Option(None, "--description", help="A note kept with it."),
    json_out: bool = JSON,
) -> None:
    """Register a run's checkpoint (or a study's best) as a new version NAME@N."""
    import hone.models

    ws = state.opened()
    with _busy("exporting and verifying", json_out):
        registered = hone.models.register(
            name,
            run=run,
            checkpoint=checkpoint,
            study=study,
            formats=formats,
            description=description,
            workspace=ws,
        )
    version = registered.version
    if json_out:
        print_json(
            {
                **version.to_dict(),
                "exports": [{"format": m.format, **m.record} for m in registered.exports],
            }
        )
        return
    console.print(
        f"registered [bold]{version.ref}[/] from run {version.run_id} step {version.step}"
    )
    _print_metrics(version.metrics)
    for made in registered.exports:
        _print_export(made.format, made.size, made.digest, made.body)


def _print_metrics(metrics: dict[str, float]) -> None:
    if metrics:
        console.print(
            "  metrics: " + ", ".join(f"{k} {fmt_number(v)}" for k, v in sorted(metrics.items())),
            markup=False,
        )


def _print_export(fmt: str, size: int, digest: str, body: dict[str, Any]) -> None:
    check = body.get("verification") or {}
    opset = f", opset {body['opset']}" if body.get("opset") else ""
    console.print(
        f"  {fmt}: {size:,} bytes (blob {digest[:12]}{opset}); verified on {check.get('rows')} "
        f"{check.get('split')} rows, max |diff| {check.get('max_abs_diff', math.nan):.2g}"
    )


@models_app.command("list")
def list_models(json_out: bool = JSON) -> None:
    """Every registered model: versions, the latest, aliases."""
    import hone.models

    found = hone.models.models(workspace=state.opened())
    if json_out:
        print_json(
            [
                {
                    "name": m.name,
                    "versions": m.versions,
                    "latest": m.latest,
                    "aliases": m.aliases,
                    "created_at": m.created_at,
                }
                for m in found
            ]
        )
        return
    if not found:
        console.print("no models yet (hone models register NAME --run RUN adds one)")
        return
    table = Table(title=f"{len(found)} model{'s' if len(found) != 1 else ''}")
    for column in ("model", "versions", "latest", "aliases", "created"):
        table.add_column(column)
    for m in found:
        table.add_row(
            m.name,
            str(m.versions),
            f"@{m.latest}" if m.latest else "-",
            ", ".join(f"{a}→@{v}" for a, v in m.aliases.items()) or "-",
            fmt_time(m.created_at, short=True),
        )
    console.print(table)


@models_app.command("versions")
def versions(name: str = typer.Argument(..., help="Model name."), json_out: bool = JSON) -> None:
    """A model's versions with their run, data and metrics."""
    import hone.models

    found = hone.models.versions(name, workspace=state.opened())
    if json_out:
        print_json([v.to_dict() for v in found])
        return
    table = Table(title=f"{name}: {len(found)} version(s)")
    # What identifies a version keeps its width; the metrics wrap.
    for column in ("version", "aliases", "run", "step", "data", "metrics", "created"):
        table.add_column(column, no_wrap=column != "metrics")
    for v in found:
        picked = sorted(k for k in v.metrics if k.startswith("val/")) or sorted(v.metrics)[:2]
        shown = escape(", ".join(f"{k} {v.metrics[k]:.4g}" for k in picked))
        table.add_row(
            f"@{v.version}",
            ", ".join(v.aliases) or "",
            v.run_id[:8],
            str(v.step),
            f"{v.body['data']['dataset']}@{v.dataset_version[:8]}",
            shown,
            fmt_time(v.created_at, short=True),
        )
    console.print(table)


@models_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME@N, NAME@ALIAS or NAME (the latest)."),
    json_out: bool = JSON,
) -> None:
    """A version: its signature, metrics, exports, and lineage as a tree."""
    import hone.models

    version, tree = hone.models.show(ref, workspace=state.opened())
    if json_out:
        print_json({**version.to_dict(), "lineage": tree})
        return
    signature = version.signature
    (entry,) = signature["inputs"]
    dims = ", ".join("batch" if d is None else str(d) for d in entry["shape"])
    classes = signature.get("classes")
    console.print(
        f"[bold]{version.ref}[/]" + (f"  ({', '.join(version.aliases)})" if version.aliases else "")
    )
    if version.body.get("description"):
        console.print(f"  {version.body['description']}", markup=False)
    console.print(
        f"  input {entry['name']}: {entry['dtype']}[{dims}] (raw: preprocessing is inside)",
        markup=False,
    )
    outputs = ", ".join(o["name"] for o in signature["outputs"])
    console.print(
        f"  outputs {outputs}"
        + (
            f"; classes {', '.join(map(str, classes[:12]))}{' …' if len(classes) > 12 else ''}"
            if classes
            else ""
        ),
        markup=False,
    )
    _print_metrics(version.metrics)
    console.print(lineage_tree(tree))


def lineage_tree(node: dict[str, Any], parent: Tree | None = None) -> Tree:
    label = Text(node["label"], style="bold" if node["kind"] == "model" else "")
    branch = Tree(label) if parent is None else parent.add(label)
    if node["kind"] == "model":
        for export in node.get("exports", []):
            check = export.get("verification") or {}
            branch.add(
                Text(
                    f"export {export['format']}: {export['size']:,} bytes, max |diff| "
                    f"{check.get('max_abs_diff', math.nan):.2g} on {check.get('rows')} "
                    f"{check.get('split')} rows",
                    style="dim",
                )
            )
    for child in node["children"]:
        lineage_tree(child, branch)
    return branch


@models_app.command("alias")
def alias(
    ref: str = typer.Argument(..., help="NAME@N: the version the alias will point to."),
    name: str = typer.Argument(..., help="The alias, e.g. champion."),
    why: str = typer.Option(None, "--why", help="Why (kept in the history)."),
    remove: bool = typer.Option(False, "--remove", help="Take the alias off NAME@N."),
) -> None:
    """Point an alias at a version (or --remove it); every move is kept in the history."""
    import hone.models

    event = hone.models.alias(ref, name, why=why, remove=remove, workspace=state.opened())
    if event is None:
        console.print(f"{ref} already is {name}: nothing changed", markup=False)
    elif event.to_version is None:
        console.print(f"removed {event.model}@{name} (was @{event.from_version})")
    else:
        was = f" (was @{event.from_version})" if event.from_version is not None else ""
        console.print(f"{event.model}@{name} → @{event.to_version}{was}")


@models_app.command("history")
def history(
    name: str = typer.Argument(..., help="Model name."),
    alias_name: str = typer.Option(None, "--alias", help="Only this alias's moves."),
    json_out: bool = JSON,
) -> None:
    """Every move of a model's aliases: from, to, when, who, why, and the promotion run."""
    import hone.models

    events = hone.models.history(name, alias=alias_name, workspace=state.opened())
    if json_out:
        print_json([e.to_dict() for e in events])
        return
    if not events:
        which = f"alias {alias_name}" if alias_name else "any alias"
        console.print(f"{name}: {which} was never set", markup=False)
        return
    table = Table(title=f"{name}: alias history")
    for column in ("when", "alias", "from", "to", "who", "why", "run"):
        table.add_column(column, overflow="fold")
    for e in events:
        table.add_row(
            fmt_time(e.at),
            e.alias,
            f"@{e.from_version}" if e.from_version is not None else "-",
            f"@{e.to_version}" if e.to_version is not None else "(removed)",
            Text(e.who),
            Text(e.why or ""),
            (e.run_id or "")[:8],
        )
    console.print(table)


@models_app.command("export")
def export(
    ref: str = typer.Argument(..., help="NAME@N, NAME@ALIAS or NAME."),
    fmt: str = typer.Option("onnx", "--format", help="onnx, safetensors or pt2."),
    out: str = typer.Option(None, "--out", help="Also write the file here."),
    force: bool = typer.Option(False, "--force", help="Export again even if it was."),
    json_out: bool = JSON,
) -> None:
    """Export a version (verified against the eager model first; an existing export is
    reused unless --force); --out writes the file."""
    import hone.models

    with _busy(f"exporting {escape(fmt)} and verifying", json_out):
        made = hone.models.export(ref, fmt, out=out, force=force, workspace=state.opened())
    if json_out:
        written = str(Path(out).expanduser().resolve()) if out else None
        print_json({**made.to_dict(), "model": made.model, "version": made.version, "out": written})
        return
    console.print(f"exported [bold]{made.model}@{made.version}[/]")
    _print_export(made.format, made.size, made.digest, made.body)
    if out:
        console.print(f"  written to {out}", markup=False)


@models_app.command("evaluate")
def evaluate(
    ref: str = typer.Argument(..., help="NAME@N, NAME@ALIAS or NAME."),
    on: str = typer.Option(..., "--on", help="Labeled data: NAME@V[:split]."),
    json_out: bool = JSON,
) -> None:
    """Accuracy, per-class metrics and a confusion matrix (through the exported graph)."""
    import hone.models
    from hone.models.evaluation import parse_data_ref

    data, split = parse_data_ref(on)
    result = hone.models.evaluate(ref, data, split, workspace=state.opened())
    if json_out:
        out = result.to_dict()
        out["metrics"] = _finite(out["metrics"])
        print_json(out)
        return
    where = f"{result.data}:{result.split}" if result.split else result.data
    console.print(f"[bold]{result.model}[/] on {where} ({result.rows:,} rows)")
    _print_metrics(result.metrics)
    if result.unknown_labels:
        err_console.print(
            f"  {result.unknown_labels} row(s) have labels the model was never trained on "
            "(counted wrong)"
        )
    if result.confusion is not None and result.classes is not None and len(result.classes) <= 20:
        table = Table(title="confusion (rows: true, columns: predicted)")
        table.add_column("")
        for c in result.classes:
            table.add_column(Text(str(c)), justify="right")
        table.add_column("recall", justify="right")
        for c, row in zip(result.classes, result.confusion, strict=True):
            table.add_row(
                Text(str(c)),
                *(str(n) if n else "·" for n in row),
                f"{result.per_class[str(c)]['recall']:.3f}",
            )
        console.print(table)


@models_app.command("promote")
def promote(
    ref: str = typer.Argument(..., help="The candidate, NAME@N."),
    to: str = typer.Option(..., "--to", help="The alias to move, e.g. champion."),
    gate: str = typer.Option(
        ..., "--gate", help="e.g. 'accuracy >= champion + 0.01' (clauses joined by and)."
    ),
    on: str = typer.Option(..., "--on", help="Evaluation data: NAME@V[:split]."),
    why: str = typer.Option(None, "--why", help="Why (kept in the history)."),
    json_out: bool = JSON,
) -> None:
    """Evaluate the candidate and the alias's version on the same rows; move the alias only
    if the gate holds (recorded as a run either way)."""
    import hone.models

    with _busy("evaluating", json_out):
        result = hone.models.promote(ref, to, gate, on, why=why, workspace=state.opened())
    if json_out:
        print_json(result.to_dict())
    else:
        for line in result.account:
            console.print(f"  {line}", markup=False)
        if result.moved:
            was = f" (was @{result.previous})" if result.previous is not None else ""
            console.print(
                f"[green]promoted[/] {result.candidate} to {result.alias}{was}; run {result.run_id}"
            )
        else:
            console.print(f"[red]not promoted[/]: the gate does not hold; run {result.run_id}")
    if not result.moved:
        raise typer.Exit(1)


@models_app.command("delete")
def delete(ref: str = typer.Argument(..., help="NAME@N (never one an alias points to).")) -> None:
    """Delete a version and its exported files; its checkpoint stays with its run."""
    import hone.models

    version = hone.models.delete(ref, workspace=state.opened())
    console.print(f"deleted {version.ref} (its number is not given again)")
