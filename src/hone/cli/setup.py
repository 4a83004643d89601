"""``hone init`` and ``hone db``: the only commands that create or migrate schema."""

from __future__ import annotations

from pathlib import Path

import typer

from hone.cli.output import console, print_json
from hone.cli.state import state
from hone.store.database import Database
from hone.store.migrations import head_revision, known_revisions
from hone.store.setup import init_workspace, upgrade_store

__all__ = ["db_app", "init"]

db_app = typer.Typer(help="Inspect and migrate the metadata store's schema.", no_args_is_help=True)


def init(
    path: Path | None = typer.Argument(
        None, help="Workspace folder (default: HONE_HOME or ./.hone)."
    ),
    store_uri: str | None = typer.Option(None, help="Metadata store URL, e.g. postgresql://…"),
    blob_uri: str | None = typer.Option(None, help="Blob store URL, e.g. file:///… or s3://…"),
) -> None:
    """Create a workspace (or reuse one) and bring its store's schema up to date."""
    workspace, result = init_workspace(path or state.home, store_uri=store_uri, blob_uri=blob_uri)
    console.print(f"[bold green]workspace[/] {workspace.home}")
    console.print(f"  metadata  {result.store}  (schema {result.after})")
    console.print(f"  blobs     {workspace.blob_uri}")
    console.print(f"  journals  {workspace.journal_dir}")


@db_app.command("upgrade")
def upgrade() -> None:
    """Migrate the workspace's metadata store to this hone's schema."""
    workspace = state.workspace().require()
    result = upgrade_store(workspace, create=False)
    if result.changed:
        console.print(f"upgraded {result.store}: {result.before or 'empty'} → {result.after}")
    else:
        console.print(f"{result.store} is already at {result.after}")


@db_app.command("current")
def current(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the schema revision the store is at and the one this hone needs."""
    workspace = state.workspace().require()
    db = Database(workspace.store_uri)
    try:
        revision = db.revision()
    finally:
        db.dispose()
    data = {
        "store": db.display_url(),
        "current": revision,
        "head": head_revision(),
        "up_to_date": revision == head_revision(),
    }
    if json_out:
        print_json(data)
        return
    newer = revision is not None and revision not in known_revisions()
    console.print(
        f"{data['store']}: at {revision or 'no schema'}, hone needs {data['head']}"
        + (" (a newer hone wrote this store: upgrade hone)" if newer else ""),
        soft_wrap=True,  # one line, however long the URL: scripts grep it
    )
