"""Creating and migrating a workspace: the only places hone writes schema."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from hone.config import Workspace
from hone.errors import StoreUnavailableError
from hone.store.engine import display_url, make_engine
from hone.store.migrations import upgrade

__all__ = ["UpgradeResult", "init_workspace", "upgrade_store"]


@dataclass(frozen=True)
class UpgradeResult:
    store: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def upgrade_store(workspace: Workspace) -> UpgradeResult:
    """Migrate the workspace's metadata store to this hone's head revision."""
    engine = make_engine(workspace.store_uri)
    try:
        before, after = upgrade(engine)
    except OperationalError as exc:
        raise StoreUnavailableError(
            f"cannot migrate the store at {display_url(workspace.store_uri)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
        ) from exc
    finally:
        engine.dispose()
    return UpgradeResult(display_url(workspace.store_uri), before, after)


def init_workspace(
    home: str | os.PathLike[str] | None = None,
    *,
    store_uri: str | None = None,
    blob_uri: str | None = None,
) -> tuple[Workspace, UpgradeResult]:
    """Create (or reuse) a workspace folder, write ``hone.toml`` and migrate its store."""
    workspace = Workspace.discover(home, store_uri=store_uri, blob_uri=blob_uri)
    workspace.home.mkdir(parents=True, exist_ok=True)
    if not workspace.exists():
        workspace.write_config(store_uri=store_uri, blob_uri=blob_uri)
    elif store_uri or blob_uri:  # re-initialising with new locations records them
        old_store, old_blobs = workspace.configured_uris()
        workspace.write_config(store_uri=store_uri or old_store, blob_uri=blob_uri or old_blobs)
    return workspace, upgrade_store(workspace)
