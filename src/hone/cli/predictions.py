"""``hone predictions`` (what served models were asked and answered, and how they do) and
``hone feedback`` (true labels for past predictions)."""

from __future__ import annotations

import csv
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from hone.cli.output import console, fmt_time, print_json
from hone.cli.state import state
from hone.errors import ValidationError

__all__ = ["feedback_app", "parse_duration", "parse_since", "predictions_app"]

predictions_app = typer.Typer(
    help="Application data: the predictions served models made, and how they do live.",
    no_args_is_help=True,
)
feedback_app = typer.Typer(help="True labels for past predictions.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")

_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, option: str) -> float:
    """Seconds in ``30s``, ``1m``, ``2h``, ``1d``."""
    match = _AGO.fullmatch(text.strip())
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else 0.0
    if not match or not 0 < seconds <= 7 * 86400:
        raise ValidationError(f"{option} {text!r}: give a duration such as 30s, 1m, 2h (up to 1w)")
    return seconds


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """``30m``, ``6h``, ``2d``, ``1w`` ago, or a UTC time (``2026-11-29`` or
    ``2026-11-29T08:30``)."""
    if text is None:
        return None
    now = time.time() if now is None else now
    match = _AGO.fullmatch(text.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f"--since {text!r}: give a time ago (30m, 6h, 2d, 1w) or a UTC time "
            "(2026-11-29 or 2026-11-29T08:30)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _model(name: str) -> str:
    from hone.registry.refs import check_model_name

    return check_model_name(name)


@predictions_app.command("list")
def list_cmd(
    name: str = typer.Argument(..., help="Model name."),
    since: str = typer.Option(None, "--since", help="30m, 6h, 2d, 1w, or a UTC time."),
    labeled: bool = typer.Option(
        None, "--labeled/--unlabeled", help="Only with / without a label."
    ),
    version: int = typer.Option(None, "--version", help="Only this version's."),
    limit: int = typer.Option(20, "--limit", help="How many (newest first)."),
    json_out: bool = JSON,
) -> None:
    """The newest predictions of a model."""
    from hone.predictions import list_predictions
    from hone.store.database import database_for

    start = parse_since(since)
    ws = state.opened()
    records = list_predictions(
        database_for(ws.store_uri),
        _model(name),
        since=start,
        labeled=labeled,
        version=version,
        limit=limit,
    )
    if json_out:
        print_json([r.to_dict() for r in records])
        return
    if not records:
        console.print(f"no predictions of {escape(name)} match")
        return
    table = Table(title=f"predictions of {escape(name)} (newest first)")
    for column in ("request id", "at (UTC)", "version", "prediction", "p", "label", "ms"):
        table.add_column(column, justify="right" if column in ("version", "p", "ms") else "left")
    for r in records:
        known = [v for v in r.probabilities or () if v is not None]
        p = max(known) if known else None
        label = "-" if r.label is None else escape(str(r.label))
        if r.label is not None and r.label != r.prediction:
            label = f"[red]{label}[/]"
        table.add_row(
            r.request_id,
            fmt_time(r.at),
            str(r.version),
            escape(str(r.prediction)),
            "-" if p is None else f"{p:.3f}",
            label,
            f"{r.latency_ms:.2f}",
        )
    console.print(table)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@predictions_app.command("stats")
def stats_cmd(
    name: str = typer.Argument(..., help="Model name."),
    by: str = typer.Option("hour", "--by", help="hour or day."),
    since: str = typer.Option(None, "--since", help="30m, 6h, 2d, 1w, or a UTC time."),
    json_out: bool = JSON,
) -> None:
    """Volume, latency percentiles, label coverage and live accuracy, per version and per
    hour or day."""
    from hone.predictions import prediction_stats
    from hone.store.database import database_for

    start = parse_since(since)
    ws = state.opened()
    stats = prediction_stats(database_for(ws.store_uri), _model(name), by=by, since=start)
    if json_out:
        print_json(stats)
        return
    if not stats["predictions"]:
        when = f" since {fmt_time(start)} UTC" if start is not None else " yet"
        console.print(f"no predictions of {escape(name)}{when}")
        return
    live = "live_mae" if "live_mae" in stats else "live_accuracy"
    shown = (lambda v: "-" if v is None else f"{v:.4g}") if live == "live_mae" else _pct
    console.print(
        f"[bold]{escape(name)}[/]: {stats['predictions']:,} predictions from "
        f"{fmt_time(stats['first'])} to {fmt_time(stats['last'])} UTC, "
        f"{stats['labeled']:,} labeled ({_pct(stats['label_coverage'])}), "
        f"{live.replace('_', ' ')} {shown(stats[live])}"
    )

    def table(title: str, first: str, rows: list[dict[str, Any]], key: Any) -> Table:
        t = Table(title=title)
        for column in (
            first,
            "predictions",
            "labeled",
            live.replace("_", " "),
            "p50 ms",
            "p90 ms",
            "p99 ms",
        ):
            t.add_column(column, justify="left" if column == first else "right")
        for row in rows:
            lat = row["latency_ms"]
            t.add_row(
                key(row),
                f"{row['predictions']:,}",
                f"{row['labeled']:,} ({_pct(row['label_coverage'])})",
                shown(row[live]),
                _ms(lat["p50"]),
                _ms(lat["p90"]),
                _ms(lat["p99"]),
            )
        return t

    console.print(table("per version", "version", stats["versions"], lambda r: str(r["version"])))
    fmt = "%Y-%m-%d %H:00" if by == "hour" else "%Y-%m-%d"
    console.print(
        table(
            f"per {by} (UTC)",
            by,
            stats["buckets"],
            lambda r: datetime.fromtimestamp(r["start"], UTC).strftime(fmt) + f"  v{r['version']}",
        )
    )


@feedback_app.command("import")
def import_cmd(
    path: Path = typer.Argument(..., help="CSV with columns request_id,label (a header row)."),
    json_out: bool = JSON,
) -> None:
    """Import labels for past predictions from a CSV file: all of it, or nothing (a line
    with an unknown request id or a label that is not a class stops it, named)."""
    from hone.predictions import give_feedback_many
    from hone.store.database import database_for

    items = _read_labels(path)
    ws = state.opened()
    db = database_for(ws.store_uri)
    results = give_feedback_many(db, items, source="import")
    counts = {
        k: sum(r.outcome == k for r in results) for k in ("recorded", "corrected", "unchanged")
    }
    if json_out:
        print_json({"file": str(path), "lines": len(items), **counts})
        return
    console.print(
        f"{len(items):,} labels from {escape(str(path))}: {counts['recorded']:,} new, "
        f"{counts['corrected']:,} corrected, {counts['unchanged']:,} unchanged"
    )


def _read_labels(path: Path) -> list[Any]:
    from hone.predictions import FeedbackItem

    _regular_file(path)
    try:
        # utf-8-sig: a byte-order mark (what spreadsheets write) is not part of the header.
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, None)
            if header is None:
                raise ValidationError(f"{path} is empty: give a header request_id,label and rows")
            names = [h.strip().lower() for h in header]
            if "request_id" not in names or "label" not in names:
                raise ValidationError(
                    f"{path}: the header must name request_id and label (it has "
                    f"{', '.join(repr(h[:40]) for h in header[:5])})"
                )
            rid, lab = names.index("request_id"), names.index("label")
            items = []
            lines: dict[str, int] = {}
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise ValidationError(
                        f"{path} line {line}: {len(row)} fields, the header has {len(header)}"
                    )
                request_id = row[rid].strip()
                if request_id in lines:
                    raise ValidationError(
                        f"{path}: request id {request_id[:40]!r} is on lines {lines[request_id]} "
                        f"and {line}; give each prediction one label"
                    )
                lines[request_id] = line
                items.append(FeedbackItem(request_id, row[lab], f"{path} line {line}"))
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text: give a CSV file") from None
    except csv.Error as exc:
        raise ValidationError(f"{path} is not a readable CSV file: {exc}") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not items:
        raise ValidationError(f"{path} has no labels after its header")
    return items


def _regular_file(path: Path) -> None:
    """A CSV file, not a folder, a FIFO (which would wait forever) or a device."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ValidationError(f"{path} does not exist") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise ValidationError(f"{path} is a folder: give a CSV file")
    if not stat.S_ISREG(mode):
        raise ValidationError(f"{path} is not a regular file: give a CSV file")
