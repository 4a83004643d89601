"""The workspace: where a user's metadata, blobs and journals live.

A workspace is a folder (``HONE_HOME``, else ``./.hone``) holding ``hone.toml``, the
embedded SQLite database and the local blob store. ``HONE_STORE_URI`` / ``HONE_BLOB_URI``
(or the same keys in ``hone.toml``) point metadata and blobs elsewhere. Journals always stay
on local disk under the workspace: they are this machine's write-ahead log.

Resolution order for each setting: explicit argument, environment, ``hone.toml``, default.
Nothing here touches the disk except reading ``hone.toml``; ``hone init`` creates things.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hone.errors import WorkspaceError

__all__ = ["CONFIG_NAME", "Workspace"]

CONFIG_NAME = "hone.toml"
HOME_ENV = "HONE_HOME"
STORE_ENV = "HONE_STORE_URI"
BLOB_ENV = "HONE_BLOB_URI"


@dataclass(frozen=True)
class Workspace:
    """Where one user's (or team's) hone state lives."""

    home: Path
    store_uri: str
    blob_uri: str

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_NAME

    @property
    def journal_dir(self) -> Path:
        return self.home / "journals"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def require(self) -> Workspace:
        """Return self, or raise a WorkspaceError that says how to create it."""
        if not self.exists():
            raise WorkspaceError(
                f"no hone workspace at {self.home} (no {CONFIG_NAME}); "
                f"run `hone init {self.home}` or set {HOME_ENV} to an existing workspace"
            )
        return self

    @classmethod
    def discover(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        store_uri: str | None = None,
        blob_uri: str | None = None,
    ) -> Workspace:
        """Resolve a workspace from arguments, environment, ``hone.toml`` and defaults."""
        root = Path(home or os.environ.get(HOME_ENV) or ".hone").expanduser().resolve()
        settings = _read_config(root / CONFIG_NAME)
        store = (
            store_uri
            or os.environ.get(STORE_ENV)
            or _setting(settings, "store", root)
            or f"sqlite:///{root / 'hone.db'}"
        )
        blobs = (
            blob_uri
            or os.environ.get(BLOB_ENV)
            or _setting(settings, "blobs", root)
            or (root / "blobs").as_uri()
        )
        return cls(home=root, store_uri=store, blob_uri=blobs)

    def configured_uris(self) -> tuple[str | None, str | None]:
        """The store and blob URIs ``hone.toml`` names (None where it keeps the default)."""
        settings = _read_config(self.config_path)
        return _setting(settings, "store", self.home), _setting(settings, "blobs", self.home)

    def write_config(self, *, store_uri: str | None, blob_uri: str | None) -> None:
        """Write ``hone.toml``, recording only the settings that differ from the defaults."""
        lines = ["# hone workspace settings; HONE_STORE_URI / HONE_BLOB_URI override these.", ""]
        lines += ["[store]", f"uri = {json.dumps(store_uri)}" if store_uri else "# uri = ..."]
        lines += ["", "[blobs]", f"uri = {json.dumps(blob_uri)}" if blob_uri else "# uri = ..."]
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".toml.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.config_path)


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WorkspaceError(f"cannot read {path}: {exc}") from exc


def _setting(settings: dict[str, Any], section: str, root: Path) -> str | None:
    table = settings.get(section)
    if not isinstance(table, dict):
        return None
    uri = table.get("uri")
    if uri is None:
        return None
    if not isinstance(uri, str) or not uri:
        raise WorkspaceError(f"{root / CONFIG_NAME}: [{section}] uri must be a non-empty string")
    return uri
