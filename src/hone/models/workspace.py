"""The store and blobs of the workspace a models call works in."""

from __future__ import annotations

import os
from dataclasses import dataclass

from hone.blobs import BlobStore, open_blob_store
from hone.config import Workspace
from hone.store.database import Database, database_for

__all__ = ["Opened", "WorkspaceLike", "opened"]

WorkspaceLike = Workspace | str | os.PathLike[str] | None


@dataclass(frozen=True)
class Opened:
    workspace: Workspace
    db: Database
    blobs: BlobStore


def opened(workspace: WorkspaceLike) -> Opened:
    ws = workspace if isinstance(workspace, Workspace) else Workspace.discover(workspace)
    ws.require()
    return Opened(ws, database_for(ws.store_uri), open_blob_store(ws.blob_uri))
