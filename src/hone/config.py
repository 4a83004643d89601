"""The workspace: where a user's metadata, blobs and journals live.

A workspace is a folder (``HONE_HOME``, else ``./.hone``) holding ``hone.toml``, the
embedded SQLite database and the local blob store. ``HONE_STORE_URI`` / ``HONE_BLOB_URI``
(or the same keys in ``hone.toml``) point metadata and blobs elsewhere. Journals always stay
on local disk under the workspace: they are this machine's write-ahead log.

Resolution order for each setting: explicit argument, environment, ``hone.toml``, default.
Nothing here touches the disk except reading ``hone.toml`` (and ``write_config``, which
``hone init`` calls once the store answered); ``hone init`` creates things.

Settings are checked as they are read: a path or URL that is not UTF-8 text (bytes that
came from argv or the environment as surrogate escapes), a ``hone.toml`` that is not UTF-8
TOML, or a setting of the wrong type raise a one-line error naming the setting.
"""

from __future__ import annotations

import errno
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hone.errors import DiskFullError, ValidationError, WorkspaceError

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
        if self.home.exists() and not self.home.is_dir():
            raise WorkspaceError(
                f"the workspace path {self.home} is a file, not a folder; point --workspace "
                f"(or {HOME_ENV}) at a workspace folder"
            )
        if self.config_path.exists() and not self.config_path.is_file():
            raise WorkspaceError(
                f"{self.config_path} is not a file; move it away and run `hone init {self.home}`"
            )
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
        root = _home_path(home or os.environ.get(HOME_ENV) or ".hone")
        settings = _read_config(root / CONFIG_NAME)
        store = (
            _text("the store URI", store_uri)
            or _text(STORE_ENV, os.environ.get(STORE_ENV))
            or _setting(settings, "store", root)
            or f"sqlite:///{root / 'hone.db'}"
        )
        blobs = (
            _text("the blob URI", blob_uri)
            or _text(BLOB_ENV, os.environ.get(BLOB_ENV))
            or _setting(settings, "blobs", root)
            or (root / "blobs").as_uri()
        )
        return cls(home=root, store_uri=store, blob_uri=blobs)

    def configured_uris(self) -> tuple[str | None, str | None]:
        """The store and blob URIs ``hone.toml`` names (None where it keeps the default)."""
        settings = _read_config(self.config_path)
        return _setting(settings, "store", self.home), _setting(settings, "blobs", self.home)

    def write_config(self, *, store_uri: str | None, blob_uri: str | None) -> None:
        """Write ``hone.toml``, recording only the settings that differ from the defaults.

        Atomic: the file is written beside under a unique name, synced and renamed over,
        so a reader (or a concurrent ``hone init``) sees the old file or the new, whole.
        """
        lines = ["# hone workspace settings; HONE_STORE_URI / HONE_BLOB_URI override these.", ""]
        lines += ["[store]", f"uri = {_toml_string(store_uri)}" if store_uri else "# uri = ..."]
        lines += ["", "[blobs]", f"uri = {_toml_string(blob_uri)}" if blob_uri else "# uri = ..."]
        tmp: str | None = None
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.home, prefix=f".{CONFIG_NAME}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.config_path)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(f"cannot write {self.config_path}: the disk is full") from exc
            raise WorkspaceError(f"cannot write {self.config_path}: {exc.strerror or exc}") from exc
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)  # gone already when the rename happened


def _toml_string(value: str) -> str:
    """``value`` as a TOML basic string. (JSON's escapes are not all TOML: JSON writes a
    character beyond U+FFFF as two surrogate escapes, which TOML refuses.)"""
    escaped = []
    for char in value:
        if char in '"\\':
            escaped.append("\\" + char)
        elif char < " " or char == "\x7f":
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _home_path(home: str | os.PathLike[str]) -> Path:
    try:
        raw = os.fspath(home)
    except TypeError:
        raise ValidationError(
            f"the workspace path must be a str or a path, not {type(home).__name__}"
        ) from None
    if not isinstance(raw, str):
        raise ValidationError("the workspace path must be text, not bytes")
    _text("the workspace path", raw)
    try:
        path = Path(raw).expanduser().resolve()
        path.exists()  # raises for a name too long, or a loop of links
    except (OSError, RuntimeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ValidationError(f"the workspace path {raw!r} is not usable: {reason}") from exc
    return path


def _text(what: str, value: str | None) -> str | None:
    """``value``, unless it holds bytes that are not UTF-8 (surrogate escapes) or NULs."""
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{what} {os.fsencode(value)!r} is not UTF-8 text; hone needs paths and URLs "
            "in UTF-8 (rename the folder, or choose another)"
        ) from None
    if "\0" in value:
        raise ValidationError(f"{what} {value!r} contains a NUL byte")
    return value


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    fix = "fix it by hand, or move it away and run `hone init`"
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except UnicodeDecodeError as exc:
        raise WorkspaceError(
            f"cannot read {path}: it is not UTF-8 text ({exc.reason}); {fix}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(f"cannot read {path}: not valid TOML ({exc}); {fix}") from exc
    except OSError as exc:
        raise WorkspaceError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _setting(settings: dict[str, Any], section: str, root: Path) -> str | None:
    where = root / CONFIG_NAME
    table = settings.get(section)
    if table is None:
        return None
    if not isinstance(table, dict):
        raise WorkspaceError(f"{where}: {section} must be a [{section}] table with a uri key")
    uri = table.get("uri")
    if uri is None:
        return None
    if not isinstance(uri, str) or not uri.strip():
        raise WorkspaceError(f"{where}: [{section}] uri must be a non-empty string")
    if "\0" in uri:
        raise WorkspaceError(f"{where}: [{section}] uri contains a NUL byte")
    return uri
