"""``hone runs``: list, show, metric history, compare, checkpoints."""

from __future__ import annotations

import typer
from rich.table import Table

from hone.blobs import open_blob_store
from hone.cli.output import (
    console,
    fmt_duration,
    fmt_number,
    fmt_time,
    print_json,
    sparkline,
)
from hone.cli.state import state
from hone.tracking import queries
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.entities import Run, RunStatus, json_number
from hone.tracking.quarantine import quarantined_records

__all__ = ["runs_app"]

runs_app = typer.Typer(help="Find, inspect and compare tracked runs.", no_args_is_help=True)

_STATUS_STYLE = {
    RunStatus.RUNNING: "cyan",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "red",
    RunStatus.KILLED: "yellow",
}
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _status(run: Run) -> str:
    return f"[{_STATUS_STYLE[run.status]}]{run.status.value}[/]"


@runs_app.command("list")
def list_runs(
    experiment: list[str] | None = typer.Option(
        None, "--experiment", "-e", help="Only runs of this experiment (repeatable)."
    ),
    filter: str | None = typer.Option(
        None, "--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.lr = '0.01'\""
    ),
    order_by: list[str] | None = typer.Option(
        None, "--order-by", "-o", help="e.g. 'metrics.acc desc' (repeatable)."
    ),
    max_results: int = typer.Option(
        100, "--max-results", "-n", help="At most this many runs (1 to 50,000)."
    ),
    json_out: bool = JSON,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    db = state.tracker().db
    found = queries.search_runs(
        db, experiment=experiment or None, filter=filter, order_by=order_by, max_results=max_results
    )
    if json_out:
        print_json([r.to_dict() for r in found])
        return
    if not found:
        console.print("no runs match")
        return
    metric_keys = sorted({k for r in found for k in r.metrics})[:6]
    table = Table(title=f"{len(found)} run(s)", show_lines=False)
    for column in ("id", "experiment", "name", "status", "started", "duration", *metric_keys):
        table.add_column(column, no_wrap=column in ("id", "status", "started", "duration"))
    for run in found:
        table.add_row(
            run.id[:12],
            run.experiment,
            run.name,
            _status(run),
            fmt_time(run.start_time, short=True),
            fmt_duration(run.duration),
            *(fmt_number(run.metrics[k].value) if k in run.metrics else "" for k in metric_keys),
        )
    console.print(table)


@runs_app.command("show")
def show(
    run_id: str = typer.Argument(..., help="Run id or a unique prefix of one."),
    json_out: bool = JSON,
) -> None:
    """Everything recorded about one run."""
    db = state.tracker().db
    run = queries.get_run(db, run_id)
    set_aside = quarantined_records(db, run.id)
    if json_out:
        print_json({**run.to_dict(), "quarantined": [q.to_dict() for q in set_aside]})
        return
    console.print(f"[bold]run[/] {run.id}  {_status(run)}")
    rows = [
        ("experiment", run.experiment),
        ("name", run.name),
        ("started", fmt_time(run.start_time)),
        ("ended", fmt_time(run.end_time)),
        ("duration", fmt_duration(run.duration)),
        ("parent", run.parent_run_id or "-"),
        ("git", f"{run.git_commit or '-'}{' (dirty)' if run.git_dirty else ''}"),
        ("host", f"{run.user or '?'}@{run.host or '?'}"),
        ("source", run.source or "-"),
        ("python", str(run.environment.get("python", "-"))),
    ]
    for label, value in rows:
        console.print(f"  [dim]{label:<11}[/]{value}")
    # hone's own tags cleared on a resume (an old error) hold "": nothing to show.
    tags = {k: v for k, v in run.tags.items() if v or not k.startswith("hone.")}
    for title, values in (("params", run.params), ("tags", tags)):
        if values:
            console.print(f"[bold]{title}[/]")
            for key in sorted(values):
                console.print(f"  {key} = {values[key]}")
    if run.metrics:
        table = Table(title="metrics (latest step)")
        for column in ("key", "value", "step"):
            table.add_column(column)
        for key in sorted(run.metrics):
            m = run.metrics[key]
            table.add_row(key, fmt_number(m.value), str(m.step))
        console.print(table)
    if run.inputs:
        console.print("[bold]inputs[/]")
        for item in run.inputs:
            console.print(f"  {item.ref}" + (f"  split {item.split}" if item.split else ""))
    if run.artifacts:
        console.print("[bold]artifacts[/]")
        for artifact in run.artifacts:
            console.print(f"  {artifact.path}  {artifact.size} B  sha256:{artifact.digest[:12]}")
    if set_aside:
        console.print(f"[bold yellow]set aside[/] ({len(set_aside)} record(s) the store refused)")
        for refused in set_aside:
            console.print(
                f"  {fmt_time(refused.quarantined_at)}  {refused.kind}: {refused.reason}",
                markup=False,
                highlight=False,
            )
            console.print(f"    {refused.record[:200]}", markup=False, highlight=False)


@runs_app.command("metrics")
def metric_history(
    run_id: str = typer.Argument(..., help="Run id or a unique prefix of one."),
    key: str = typer.Argument(..., help="Metric key."),
    json_out: bool = JSON,
) -> None:
    """A metric's history, step by step, with a sparkline."""
    points = queries.metric_history(state.tracker().db, run_id, key)
    if json_out:
        print_json(
            [
                {"step": p.step, "value": json_number(p.value), "timestamp": p.timestamp}
                for p in points
            ]
        )
        return
    values = [p.value for p in points]
    console.print(f"[bold]{key}[/]  {len(points)} point(s)  {sparkline(values)}")
    shown = points if len(points) <= 40 else points[:20] + points[-20:]
    table = Table()
    table.add_column("step", justify="right")
    table.add_column("value", justify="right")
    table.add_column("time")
    for i, p in enumerate(shown):
        if len(points) > 40 and i == 20:
            table.add_row("…", f"({len(points) - 40} more)", "")
        table.add_row(str(p.step), fmt_number(p.value), fmt_time(p.timestamp))
    console.print(table)


@runs_app.command("compare")
def compare(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids (or prefixes)."),
    json_out: bool = JSON,
) -> None:
    """Params and latest metrics of several runs side by side; differences highlighted."""
    db = state.tracker().db
    found = [queries.get_run(db, run_id) for run_id in run_ids]
    if json_out:
        print_json([r.to_dict() for r in found])
        return
    table = Table(title="compare")
    table.add_column("")
    for run in found:
        table.add_column(f"{run.name}\n{run.id[:12]}")
    table.add_row("status", *(_status(r) for r in found))
    for title, getter in (
        ("params", lambda r, k: r.params.get(k, "")),
        ("metrics", lambda r, k: fmt_number(r.metrics[k].value) if k in r.metrics else ""),
    ):
        keys = sorted({k for r in found for k in (r.params if title == "params" else r.metrics)})
        for key in keys:
            cells = [getter(r, key) for r in found]
            style = "bold yellow" if len(set(cells)) > 1 else ""
            label = f"{title}.{key}"
            table.add_row(f"[{style}]{label}[/]" if style else label, *cells)
    console.print(table)


@runs_app.command("checkpoints")
def checkpoints(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    json_out: bool = JSON,
) -> None:
    """List a run's checkpoints (the parameter library): step, epoch, size, metrics."""
    db = state.tracker().db
    full = queries.resolve_run_id(db, run_id)
    found = list_checkpoints(db, full)
    blobs = open_blob_store(state.opened().blob_uri)
    present = [blobs.exists(c.weights) and blobs.exists(c.state) for c in found]
    if json_out:
        print_json(
            [{**c.to_dict(), "blobs_present": ok} for c, ok in zip(found, present, strict=True)]
        )
        return
    if not found:
        console.print(f"run {full} has no checkpoints")
        return
    names = {k for c in found for k in c.metrics}
    keys = sorted(names, key=lambda k: (not k.startswith("val/"), k))[:3]
    table = Table(title=f"{len(found)} checkpoint(s) of run {full[:12]}")
    for column in ("step", "epoch", "saved", "size", *keys, "blobs"):
        table.add_column(column, no_wrap=True)
    for c, ok in zip(found, present, strict=True):
        table.add_row(
            str(c.step),
            str(c.epoch),
            fmt_time(c.created_at, short=True),
            f"{c.size / 2**20:.2f} MiB",
            *(fmt_number(c.metrics[k]) if k in c.metrics else "" for k in keys),
            "ok" if ok else "[red]missing[/]",
        )
    console.print(table)
    if missing := present.count(False):
        console.print(
            f"[red]{missing} checkpoint(s) lost their blobs[/]: resuming skips them (a blob "
            "deleted by hand, or a blob store that is not this run's)"
        )
