"""Creating and migrating a workspace: the only places hone writes schema.

``init_workspace`` checks what it can before it writes anything (the folder, the store URL,
the blob store, by writing a probe file that is gone again), then migrates the store, and
writes ``hone.toml`` last, atomically: a workspace exists once its ``hone.toml`` does. A
failed init leaves an existing workspace exactly as it was, and removes what it made of a
new one (folders it created, a SQLite file it created), so no half-made folder remains that
a later command would take for a workspace. Inits of one folder take turns (an flock on the
folder), so one init never takes back what another made.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hone.blobs import open_blob_store
from hone.config import Workspace
from hone.errors import DiskFullError, HoneError, ValidationError, WorkspaceError
from hone.store.engine import display_url, make_engine, parse_store_url
from hone.store.migrations import upgrade
from hone.store.translate import translate_store_error

__all__ = ["UpgradeResult", "init_workspace", "upgrade_store"]

_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class UpgradeResult:
    store: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def upgrade_store(workspace: Workspace, *, create: bool = True) -> UpgradeResult:
    """Migrate the workspace's metadata store to this hone's head revision.

    ``create=False`` (``hone db upgrade``) refuses a SQLite file that does not exist rather
    than make an empty store where the user's data was expected.
    """
    path = _sqlite_file(workspace.store_uri)
    if path is not None and not create and not path.is_file():
        raise WorkspaceError(
            f"no hone database at {path}; run `hone init {workspace.home}` to create one"
            + (" (that path is a folder)" if path.is_dir() else "")
        )
    return _migrate(workspace.store_uri)


def init_workspace(
    home: str | os.PathLike[str] | None = None,
    *,
    store_uri: str | None = None,
    blob_uri: str | None = None,
) -> tuple[Workspace, UpgradeResult]:
    """Create (or reuse) a workspace folder, migrate its store, then write ``hone.toml``."""
    workspace = Workspace.discover(home, store_uri=store_uri, blob_uri=blob_uri)
    if workspace.config_path.exists() and not workspace.exists():
        raise WorkspaceError(f"{workspace.config_path} is not a file; move it away first")
    sqlite = _sqlite_file(workspace.store_uri)
    _check_folder(workspace.home, "the workspace folder")
    open_blob_store(workspace.blob_uri).check_writable()
    made = _Made()
    try:
        made.folders(workspace.home)
        with _taking_turns(workspace.home):
            if sqlite is not None:
                _check_folder(sqlite.parent, "the folder of the SQLite store", must_exist=True)
                made.sqlite_file(sqlite)
            result = _migrate(workspace.store_uri)
            if not workspace.exists() or store_uri or blob_uri:
                # Read again: an init that finished while this one waited may have written it.
                old_store, old_blobs = workspace.configured_uris()
                workspace.write_config(
                    store_uri=store_uri or old_store, blob_uri=blob_uri or old_blobs
                )
    except BaseException:
        made.undo()
        raise
    return workspace, result


def _migrate(url: str) -> UpgradeResult:
    where = display_url(url)
    try:
        engine = make_engine(url)
    except ImportError as exc:
        raise ValidationError(
            f"the store at {where} needs a driver that is not installed ({exc}); "
            "run `pip install 'hone[postgres]'`"
        ) from exc
    try:
        before, after = upgrade(engine)
    except HoneError:
        raise
    except Exception as exc:
        translated = translate_store_error(exc, where)
        if translated is None:
            raise
        raise translated from exc
    finally:
        engine.dispose()
    return UpgradeResult(where, before, after)


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite store URL; None for other backends."""
    try:
        parsed = parse_store_url(url)
    except ValueError as exc:  # SQLAlchemy's own, e.g. a port that is not a number
        shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
        raise ValidationError(
            f"store URL {shown!r} is not a database URL ({exc}); expected sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        ) from exc
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:"):
        raise ValidationError(
            f"store URL {url!r} is an in-memory database, which forgets everything when the "
            "process ends; use sqlite:///PATH"
        )
    return Path(str(parsed.database)).absolute()


def _check_folder(folder: Path, what: str, *, must_exist: bool = False) -> None:
    """Raise unless ``folder`` (or, if it is yet to be made, its nearest existing parent) is
    a folder this process can write in. Probes by writing a file that is removed at once."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if must_exist:
            raise ValidationError(f"{what} {folder} does not exist; create it first")
        existing = existing.parent
    if not existing.is_dir():
        raise ValidationError(f"{what} {folder} cannot be made: {existing} is a file")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".hone-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _os_error(exc, f"{what} {folder}", existing) from exc


@contextmanager
def _taking_turns(folder: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``folder`` itself: no lock file to leave behind."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _os_error(exc: OSError, what: str, where: Path, *, probing: bool = True) -> HoneError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"cannot create {what}: the disk holding {where} is full")
    reason = exc.strerror or str(exc)
    if not probing:  # making the folder itself failed, e.g. a name too long
        return ValidationError(f"cannot create {what}: {reason}")
    return ValidationError(
        f"cannot create {what}: {where} is not writable ({reason}); choose a folder you can "
        "write in"
    )


@dataclass
class _Made:
    """What init created, so that a failed init can take it back."""

    dirs: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def folders(self, folder: Path) -> None:
        missing: list[Path] = []
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:  # a concurrent init made it: not ours to remove
                continue
            except OSError as exc:
                where = path.parent
                raise _os_error(exc, f"the workspace folder {path}", where, probing=False) from exc
            self.dirs.append(path)

    def sqlite_file(self, path: Path) -> None:
        """Create the SQLite file, or find it there; only one this init made is taken back."""
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            if path.is_dir():
                raise ValidationError(f"the SQLite store {path} is a folder, not a file") from None
            return
        except OSError as exc:
            raise _os_error(exc, f"the SQLite store {path}", path.parent) from exc
        self.files += [Path(f"{path}{suffix}") for suffix in _SQLITE_SIDE_FILES]

    def undo(self) -> None:
        for path in self.files:
            with contextlib.suppress(OSError):
                path.unlink()
        for path in reversed(self.dirs):
            with contextlib.suppress(OSError):  # not empty: someone else wrote there too
                path.rmdir()
