"""``hone data``: import, list and show dataset versions."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hone.cli.output import console, err_console, fmt_number, fmt_time, print_json
from hone.cli.state import state
from hone.data import api, compare
from hone.data.export import export as export_version
from hone.data.importers import display_path
from hone.data.splits import SplitWarning
from hone.errors import ValidationError

__all__ = ["data_app"]

data_app = typer.Typer(
    help="The sample library: versioned, labeled datasets.", no_args_is_help=True
)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
SHOWN_FEATURES = 20


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    found = re.fullmatch(r"\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*", text)
    if not found or not int(found.group(1)) * int(found.group(2)):
        raise ValidationError(f"--image-size {text!r}: expected WIDTHxHEIGHT, e.g. 64x64")
    return int(found.group(1)), int(found.group(2))


@data_app.command("import")
def import_(
    name: str = typer.Argument(..., help="Dataset name."),
    source: str = typer.Argument(..., help="CSV, Parquet or .npz file, or sklearn:digits …"),
    label: str | None = typer.Option(None, "--label", "-l", help="The label column."),
    features: list[str] | None = typer.Option(
        None, "--features", "-f", help="Feature columns (repeatable, or comma-separated)."
    ),
    split: str | None = typer.Option(None, "--split", "-s", help="e.g. train=0.8,test=0.2"),
    stratify: bool = typer.Option(False, "--stratify", help="Keep class proportions per split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split assignment."),
    image_mode: str = typer.Option("RGB", "--image-mode", help="Image folders: RGB or L."),
    image_size: str | None = typer.Option(
        None, "--image-size", help="Image folders: resize all to WxH."
    ),
    allow_nonfinite: bool = typer.Option(
        False, "--allow-nonfinite", help="Keep NaN/inf feature values (reported)."
    ),
    json_out: bool = JSON,
) -> None:
    """Import a source as a new version of a dataset (the same content: the same version)."""
    columns = [c.strip() for item in features or [] for c in item.split(",") if c.strip()]
    # Warnings (a class too small for every split) are printed once the import is done,
    # as lines of their own, not interleaved with the progress display.
    with (
        warnings.catch_warnings(record=True) as caught,
        console.status(f"importing {display_path(source)} …"),
    ):
        warnings.simplefilter("always", SplitWarning)
        version = api.import_dataset(
            name,
            source,
            label=label,
            features=columns or None,
            split=split,
            stratify=stratify,
            seed=seed,
            allow_nonfinite=allow_nonfinite,
            image_mode=image_mode,
            image_size=_size(image_size),
            workspace=state.opened(),
        )
    for warning in caught:
        err_console.print(Text.assemble(("warning: ", "bold yellow"), str(warning.message)))
    if json_out:
        print_json(version.row.to_dict())
        return
    summary = version.summary
    splits = ", ".join(f"{k} {v:,}" for k, v in sorted(summary["splits"].items()))
    console.print(f"[bold green]{version.ref}[/]  {version.rows:,} rows ({splits})")
    if summary["duplicates"]:
        console.print(f"[yellow]{summary['duplicates']:,} duplicate row(s)[/] (kept)")
    nonfinite = summary["nonfinite"]
    if nonfinite["nan"] or nonfinite["inf"]:
        console.print(
            f"[yellow]kept {nonfinite['nan']} NaN and {nonfinite['inf']} "
            "infinite feature value(s)[/]"
        )


@data_app.command("list")
def list_(json_out: bool = JSON) -> None:
    """Every dataset, with its newest version."""
    found = api.list_datasets(workspace=state.opened())
    if json_out:
        print_json(
            [{"name": d.name, "versions": d.versions, "latest": d.latest.to_dict()} for d in found]
        )
        return
    if not found:
        console.print("no datasets yet: `hone data import NAME SOURCE`")
        return
    table = Table(title=f"{len(found)} dataset(s)")
    for column in ("name", "versions", "latest", "rows", "splits", "created"):
        table.add_column(column, no_wrap=column in ("latest", "created"))
    for info in found:
        latest = info.latest
        splits = ", ".join(f"{k} {v:,}" for k, v in sorted(latest.summary["splits"].items()))
        table.add_row(
            info.name,
            str(info.versions),
            latest.id[:12],
            f"{latest.rows:,}",
            splits,
            fmt_time(latest.created_at, short=True),
        )
    console.print(table)


@data_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME, NAME@latest or NAME@VERSION-PREFIX."),
    json_out: bool = JSON,
) -> None:
    """Schema, rows per split, label distribution, feature statistics and lineage."""
    version = api.get(ref, workspace=state.opened())
    row, summary = version.row, version.summary
    if json_out:
        print_json(row.to_dict())
        return
    schema = summary["schema"]
    console.print(f"[bold]{version.ref}[/]  {row.id}")
    console.print(
        f"  [dim]created[/]  {fmt_time(row.created_at)}  by {row.operation}"
        f"{'  from ' + escape(row.source) if row.source else ''}"
    )
    feats = schema["features"]
    console.print(
        f"  [dim]features[/] {feats['dtype']} {tuple(feats['shape'])}"
        f"  ({len(feats['names'])} named)"
    )
    if schema["label"]:
        classes = schema["classes"]
        console.print(
            f"  [dim]label[/]    {escape(schema['label']['name'])} ({schema['label']['dtype']})"
            + (f", {len(classes)} classes" if classes else "")
        )
    splits = Table(title="rows per split")
    splits.add_column("split")
    splits.add_column("rows", justify="right")
    labels = summary.get("labels", {})
    if labels:
        splits.add_column("labels")
    for name, count in sorted(summary["splits"].items()):
        cells = [name, f"{count:,}"]
        if labels:
            dist = labels.get(name, {})
            cells.append(
                " ".join(f"{k}:{v}" for k, v in list(dist.items())[:12])
                + (" …" if len(dist) > 12 else "")
            )
        splits.add_row(*(Text(cell) for cell in cells))
    console.print(splits)
    stats = summary.get("features")
    if stats:
        table = Table(
            title="features"
            + (f" (first {SHOWN_FEATURES} of {len(stats)})" if len(stats) > SHOWN_FEATURES else "")
        )
        for column in ("name", "mean", "std", "min", "max"):
            table.add_column(column, justify="left" if column == "name" else "right")
        for name, values in list(stats.items())[:SHOWN_FEATURES]:
            table.add_row(
                Text(name),
                *(
                    fmt_number(values[k]) if values[k] is not None else "-"
                    for k in ("mean", "std", "min", "max")
                ),
            )
        console.print(table)
    console.print(
        f"  [dim]duplicates[/] {summary['duplicates']:,}   [dim]non-finite[/] "
        f"{summary['nonfinite']['nan']} NaN, {summary['nonfinite']['inf']} inf"
    )
    for warning in summary.get("warnings", []):
        console.print(Text.assemble(("  warning ", "yellow"), warning))
    for step in summary.get("transforms", []):
        console.print(
            f"  [dim]transform[/] {step['op']} (fitted on {escape(str(step['fitted_on']))}), "
            "applied when rows are read"
        )
    lineage = summary.get("lineage", {})
    described = f"{lineage.get('op')} {lineage.get('source', {})}"
    console.print(
        Text.assemble(("  lineage", "dim"), f"  {described}  params {lineage.get('params', {})}"),
        highlight=False,
    )


@data_app.command("diff")
def diff_(
    old: str = typer.Argument(..., help="NAME@VERSION (the older)."),
    new: str = typer.Argument(..., help="NAME@VERSION (the newer)."),
    json_out: bool = JSON,
) -> None:
    """Rows added, removed, relabeled and moved between splits, by split."""
    ws = state.opened()
    result = compare.diff(api.get(old, workspace=ws), api.get(new, workspace=ws))
    if json_out:
        print_json(result.to_dict())
        return
    table = Table(title=f"{result.old} → {result.new}")
    table.add_column("split")
    for column in ("added", "removed", "relabeled", "moved in"):
        table.add_column(column, justify="right")
    splits = sorted(
        set(result.added) | set(result.removed) | set(result.relabeled) | set(result.moved)
    )
    for split in splits:
        table.add_row(
            split,
            *(
                f"{getattr(result, k).get(split, 0):,}"
                for k in ("added", "removed", "relabeled", "moved")
            ),
        )
    if splits:
        console.print(table)
    else:
        console.print(f"{result.old} and {result.new} hold the same rows, labels and splits")
    if result.transforms_changed:
        console.print("their transforms differ (normalize)")


@data_app.command("log")
def log(name: str = typer.Argument(..., help="Dataset name."), json_out: bool = JSON) -> None:
    """The dataset's versions as a tree, each with how it was made."""
    tree = compare.history(api.versions(name, workspace=state.opened()))
    if json_out:
        print_json([{**v.to_dict(), "depth": depth} for depth, v in tree])
        return
    for depth, version in tree:
        lineage = version.summary.get("lineage", {})
        params = lineage.get("params", {})
        shown = ", ".join(
            f"{k}={v}"
            for k, v in params.items()
            if v not in (None, False) and k not in ("features",)
        )
        console.print(
            f"{'  ' * depth}{'└─ ' if depth else ''}[bold]{version.id[:12]}[/]  "
            f"{version.operation:<9} {version.rows:>10,} rows  "
            f"{fmt_time(version.created_at, short=True)}  [dim]{escape(shown)}[/]",
            highlight=False,
            soft_wrap=True,
        )


@data_app.command("export")
def export_(
    ref: str = typer.Argument(..., help="NAME@VERSION to write out."),
    path: Path = typer.Argument(..., help="Output file."),
    fmt: str | None = typer.Option(
        None, "--format", help="parquet, csv or npz (default: from the file's suffix)."
    ),
    split: str | None = typer.Option(None, "--split", help="Only this split's rows."),
    transformed: bool = typer.Option(
        False, "--transformed", help="Apply the version's fitted transforms."
    ),
) -> None:
    """Write a version's rows to Parquet, CSV or .npz."""
    version = api.get(ref, workspace=state.opened())
    written = export_version(version, path, fmt, split=split, transformed=transformed)
    console.print(f"wrote {escape(display_path(written))} ({version.ref}, {version.rows:,} rows)")
