"""What the root command resolved, shared with the subcommands."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hone.config import Workspace
from hone.errors import HoneError
from hone.tracking.tracker import Tracker, get_tracker

__all__ = ["CliState", "replay_predictions", "state"]

log = logging.getLogger("hone.cli")


@dataclass
class CliState:
    home: str | None = None
    synced: bool = False

    def workspace(self) -> Workspace:
        return Workspace.discover(self.home)

    def opened(self) -> Workspace:
        """The workspace, once journals left by dead or ended processes are replayed: what
        every command that reads or writes the store starts with."""
        return self.tracker().workspace

    def tracker(self) -> Tracker:
        """The tracker, after replaying journals that dead or ended processes left behind."""
        tracker = get_tracker(self.workspace())
        if not self.synced:
            self.synced = True
            try:
                tracker.sync()
                replay_predictions(tracker.workspace)
            except (HoneError, OSError) as exc:  # reads may still work; `hone sync` reports
                log.warning("hone: could not replay pending journals: %s", exc)
        return tracker


def replay_predictions(ws: Workspace) -> int:
    """Write the predictions a killed (or store-less) server journaled and no server has
    written since; how many were new to the store. Costs a folder listing when there are
    none."""
    folder = ws.journal_dir / "predictions"
    if not folder.is_dir() or not any(folder.glob("*.jnl")):
        return 0
    from hone.blobs import open_blob_store
    from hone.predictions import replay_abandoned
    from hone.store.database import database_for

    return replay_abandoned(database_for(ws.store_uri), open_blob_store(ws.blob_uri), folder)


state = CliState()
