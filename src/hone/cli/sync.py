"""``hone sync``: replay journals left by ended or dead processes into the store."""

from __future__ import annotations

import typer

from hone.cli.output import console, print_json
from hone.cli.state import state
from hone.tracking.tracker import get_tracker

__all__ = ["sync"]


def sync(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Replay what the store lacks from local journals; mark runs of dead processes killed."""
    state.synced = True  # this command does the replay itself, and reports it
    report = get_tracker(state.workspace()).sync()
    if json_out:
        print_json(
            {
                "segments": report.segments,
                "records": report.records,
                "torn_bytes": report.torn_bytes,
                "killed_runs": report.killed_runs,
            }
        )
        return
    console.print(f"replayed {report.records} record(s) from {report.segments} journal segment(s)")
    if report.torn_bytes:
        console.print(f"[yellow]skipped {report.torn_bytes} byte(s) of torn records[/]")
    for run_id in report.killed_runs:
        console.print(f"marked run {run_id} [yellow]killed[/] (its process died)")
