"""One process's handle on one workspace: store, blobs, journals and the flusher."""

from __future__ import annotations

import threading

from hone.blobs import BlobStore, open_blob_store
from hone.config import Workspace
from hone.store.database import database_for, dispose_databases, dispose_databases_in_child
from hone.tracking.flusher import Flusher
from hone.tracking.replay import RetryReport, SyncReport, retry_set_aside, sync_journals
from hone.tracking.sink import StoreSink

__all__ = [
    "Tracker",
    "close_retired_segments",
    "close_trackers",
    "get_tracker",
    "reset_trackers_in_child",
]


class Tracker:
    """Everything tracking needs for one workspace; cheap to build, connects lazily."""

    def __init__(self, workspace: Workspace, *, flush_interval: float = 1.0) -> None:
        self.workspace = workspace
        self.db = database_for(workspace.store_uri)
        self.blobs: BlobStore = open_blob_store(workspace.blob_uri)
        self.sink = StoreSink(self.db)
        self.flusher = Flusher(interval=flush_interval, on_tick=self.db.checkpoint)

    def sync(self, run_id: str | None = None) -> SyncReport:
        """Replay journals that no living process holds into the store."""
        return sync_journals(self.workspace.journal_dir, self.sink, run_id=run_id)

    def retry_set_aside(self, run_id: str | None = None) -> RetryReport:
        """Apply again the records set aside (of one run, or all)."""
        return retry_set_aside(self.sink, run_id)


_trackers: dict[Workspace, Tracker] = {}
_lock = threading.Lock()


def get_tracker(workspace: Workspace | None = None) -> Tracker:
    """The process's tracker for ``workspace`` (discovered from the environment if None)."""
    ws = (workspace or Workspace.discover()).require()
    with _lock:
        tracker = _trackers.get(ws)
        if tracker is None:
            tracker = _trackers[ws] = Tracker(ws)
        return tracker


def close_retired_segments() -> None:
    """Delete the journal segments of ended runs now, rather than in the background."""
    with _lock:
        trackers = list(_trackers.values())
    for tracker in trackers:
        tracker.flusher.close_retired(keep_spares=False)


def reset_trackers_in_child() -> None:
    """In a forked child: forget the parent's trackers (their runs, journal segments and
    connections are the parent's); the child builds its own on first use."""
    global _lock
    _lock = threading.Lock()  # the parent may have held it at the fork
    trackers = list(_trackers.values())
    _trackers.clear()
    for tracker in trackers:
        tracker.flusher.forget_in_child()
    dispose_databases_in_child()


def close_trackers() -> None:
    """Dispose every tracker's connections (tests, and programs that switch workspaces)."""
    close_retired_segments()
    with _lock:
        _trackers.clear()
    dispose_databases()
