"""``hone sync``: replay journals left by ended or dead processes into the store."""

from __future__ import annotations

import typer

from hone.cli.output import console, print_json
from hone.cli.state import replay_predictions, state
from hone.tracking.tracker import get_tracker

__all__ = ["sync"]


def sync(
    retry: bool = typer.Option(
        False,
        "--retry-set-aside",
        help="Also apply again the records set aside earlier (once their cause is fixed).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Replay what the store lacks from local journals; mark runs of dead processes killed.

    Records the store refuses are set aside (listed here and by `hone runs show`) and
    never block the rest; a journal that cannot be read is moved to journals/damaged/.
    """
    state.synced = True  # this command does the replay itself, and reports it
    tracker = get_tracker(state.workspace())
    report = tracker.sync()
    predictions = replay_predictions(tracker.workspace)
    retried = tracker.retry_set_aside() if retry else None
    if json_out:
        print_json(
            {
                "segments": report.segments,
                "records": report.records,
                "torn_bytes": report.torn_bytes,
                "skipped_bytes": report.skipped_bytes,
                "killed_runs": report.killed_runs,
                "quarantined_count": report.quarantined_count,
                "quarantined": [q.to_dict() for q in report.quarantined],
                "set_aside": [{"path": s.path, "reason": s.reason} for s in report.set_aside],
                "retried": None if retried is None else vars(retried),
                "prediction_records": predictions,
            }
        )
        return
    console.print(f"replayed {report.records} record(s) from {report.segments} journal segment(s)")
    if predictions:
        console.print(f"wrote {predictions} prediction(s) a stopped server had journaled")
    if report.torn_bytes:
        console.print(f"[yellow]skipped {report.torn_bytes} byte(s) of torn records[/]")
    if report.skipped_bytes:
        console.print(
            f"[yellow]stepped over {report.skipped_bytes} damaged byte(s) inside journals[/]"
        )
    for run_id in report.killed_runs:
        console.print(f"marked run {run_id} [yellow]killed[/] (its process died)")
    if report.quarantined_count:
        console.print(
            f"[yellow]set aside {report.quarantined_count} record(s) the store refused[/] "
            "(`hone runs show RUN` lists a run's):"
        )
        for item in report.quarantined[:20]:
            console.print(
                f"  run {item.run_id or '?'}  {item.kind}: {item.reason}",
                markup=False,
                highlight=False,
            )
    for aside in report.set_aside:
        console.print(f"[yellow]moved {aside.path} aside[/]: {aside.reason}")
    if retried is not None:
        console.print(
            f"applied {retried.applied} set-aside record(s); {retried.refused} still refused"
            + (f", {retried.unreadable} unreadable" if retried.unreadable else "")
        )
