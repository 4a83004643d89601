"""Bad input to the workspace layer, through the CLI (issue 6, faults 13 and 16).

A table of cases: a workspace prepared in some (broken) state, a command, its environment,
and what must come out: the exit code from ``hone.errors``, a fragment of the message,
exactly one line on stderr and no traceback, and every file under the test's folder byte
for byte as it was (nothing written, nothing half-made). Keep it growing: add a row.
"""

from __future__ import annotations

import contextlib
import os
import random
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import hone
from hone.cli.main import main
from hone.cli.state import state
from hone.tracking.tracker import close_trackers
from tests.blobs.mounts import tmpfs

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"  # port 1 refuses at once
NOT_UTF8 = os.fsdecode(b"caf\xe9")  # what Python makes of those bytes in argv or environ
TOO_LONG = "a" * 300  # over NAME_MAX
DAMAGED = "damaged or not a hone database"


@dataclass(frozen=True)
class Case:
    id: str
    state: str  # a key of STATES: how the folder {ws} is prepared
    command: str  # split like a shell would; then {ws} and {tmp} become paths
    code: int
    message: str
    env: dict[str, str] = field(default_factory=dict)


def _healthy(ws: Path, _: contextlib.ExitStack) -> None:
    workspace = hone.init(ws)
    with hone.start_run("kept", workspace=workspace) as run:
        run.log_metric("loss", 0.5)
    close_trackers()


def _with_db(content: Callable[[bytes], bytes]) -> Callable[[Path, contextlib.ExitStack], None]:
    def prepare(ws: Path, stack: contextlib.ExitStack) -> None:
        _healthy(ws, stack)
        db = ws / "hone.db"
        db.write_bytes(content(db.read_bytes()))

    return prepare


def _with_toml(content: bytes) -> Callable[[Path, contextlib.ExitStack], None]:
    def prepare(ws: Path, stack: contextlib.ExitStack) -> None:
        _healthy(ws, stack)
        (ws / "hone.toml").write_bytes(content)

    return prepare


def _at_revision_9999(ws: Path, stack: contextlib.ExitStack) -> None:
    _healthy(ws, stack)
    engine = create_engine(f"sqlite:///{ws / 'hone.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()


def _db_is_a_folder(ws: Path, stack: contextlib.ExitStack) -> None:
    _healthy(ws, stack)
    (ws / "hone.db").unlink()
    (ws / "hone.db").mkdir()


def _db_missing(ws: Path, stack: contextlib.ExitStack) -> None:
    _healthy(ws, stack)
    (ws / "hone.db").unlink()


def _toml_is_a_folder(ws: Path, stack: contextlib.ExitStack) -> None:
    _healthy(ws, stack)
    (ws / "hone.toml").unlink()
    (ws / "hone.toml").mkdir()


def _a_link_loop(ws: Path, _: contextlib.ExitStack) -> None:
    (ws.parent / "loop").symlink_to("loop")


def _a_file(ws: Path, _: contextlib.ExitStack) -> None:
    ws.write_text("a file, not a folder")


def _read_only_parent(ws: Path, stack: contextlib.ExitStack) -> None:
    stack.enter_context(tmpfs(ws.parent / "ro", readonly=True))


STATES: dict[str, Callable[[Path, contextlib.ExitStack], None]] = {
    "none": lambda ws, stack: None,
    "healthy": _healthy,
    "garbage-db": _with_db(lambda _: random.Random(6).randbytes(20_000)),
    "truncated-db": _with_db(lambda data: data[: len(data) // 2]),
    "binary-toml": _with_toml(bytes(range(256))),
    "latin1-toml": _with_toml("[store]\nuri = 'sqlite:///caf\xe9.db'\n".encode("latin-1")),
    "invalid-toml": _with_toml(b"[store\nuri = 1"),
    "uri-not-a-string-toml": _with_toml(b"[store]\nuri = 5\n"),
    "section-not-a-table-toml": _with_toml(b"store = 'sqlite:///x.db'\n"),
    "ftp-blobs-toml": _with_toml(b"[blobs]\nuri = 'ftp://example.com/blobs'\n"),
    "revision-9999": _at_revision_9999,
    "db-is-a-folder": _db_is_a_folder,
    "db-missing": _db_missing,
    "toml-is-a-folder": _toml_is_a_folder,
    "a-file": _a_file,
    "link-loop": _a_link_loop,
    "read-only-parent": _read_only_parent,
}

# Commands that open a workspace's store, each of which must answer a broken one cleanly.
OPENING = ["runs list", "db current", "db upgrade", "data list"]


def on_every_command(state: str, code: int, message: str) -> list[Case]:
    cases = [Case(f"{state}-{c}", state, f"-w {{ws}} {c}", code, message) for c in OPENING]
    return [*cases, Case(f"{state}-init", state, "init {ws}", code, message)]


def env_case(id: str, state: str, command: str, code: int, message: str, **env: str) -> Case:
    return Case(id, state, command, code, message, env)


HOME_A_FILE = {"HONE_HOME": "{ws}"}

CASES = [
    # A damaged database or settings file: every command says so, none writes.
    *on_every_command("garbage-db", 4, DAMAGED),
    *on_every_command("truncated-db", 4, DAMAGED),
    *on_every_command("binary-toml", 4, "is not UTF-8 text"),
    *on_every_command("latin1-toml", 4, "is not UTF-8 text"),
    *on_every_command("invalid-toml", 4, "not valid TOML"),
    *on_every_command("uri-not-a-string-toml", 4, "[store] uri must be a non-empty string"),
    *on_every_command("section-not-a-table-toml", 4, "must be a [store] table"),
    Case("ftp-toml-data-list", "ftp-blobs-toml", "-w {ws} data list", 2, "ftp:// cannot hold"),
    Case("ftp-toml-init", "ftp-blobs-toml", "init {ws}", 2, "ftp:// cannot hold blobs"),
    *on_every_command("toml-is-a-folder", 4, "hone.toml is not a file"),
    # A store written by a newer hone.
    Case("9999-db-upgrade", "revision-9999", "-w {ws} db upgrade", 4, "'9999', which this hone"),
    Case("9999-init", "revision-9999", "init {ws}", 4, "a newer hone wrote it"),
    Case("9999-runs-list", "revision-9999", "-w {ws} runs list", 4, "revision 9999"),
    # The database file is gone, or is a folder.
    Case("db-missing-db-upgrade", "db-missing", "-w {ws} db upgrade", 4, "no hone database at"),
    Case("db-missing-runs-list", "db-missing", "-w {ws} runs list", 4, "no hone database at"),
    Case("db-folder-upgrade", "db-is-a-folder", "-w {ws} db upgrade", 4, "path is a folder)"),
    Case("db-folder-init", "db-is-a-folder", "init {ws}", 2, "is a folder, not a file"),
    # Where a workspace cannot be.
    Case("init-a-file", "a-file", "init {ws}", 2, "is a file"),
    Case("init-under-a-file", "a-file", "init {ws}/sub", 2, "is a file"),
    Case("init-proc", "none", "init /proc/hone-test-ws", 2, "is not writable"),
    Case("init-proc-self", "none", "init /proc/self/hone", 2, "is not writable"),
    Case("init-read-only", "read-only-parent", "init {tmp}/ro/ws", 2, "Read-only file system"),
    Case("init-not-utf8", "none", f"init {{tmp}}/{NOT_UTF8}", 2, "caf\\xe9' is not UTF-8 text"),
    Case("list-not-utf8", "none", f"-w {{tmp}}/{NOT_UTF8} runs list", 2, "is not UTF-8 text"),
    Case("init-too-long", "none", f"init {{tmp}}/{TOO_LONG}", 2, "File name too long"),
    Case("init-too-long-below", "none", f"init {{ws}}/{TOO_LONG}", 2, "File name too long"),
    Case("list-too-long", "none", f"-w {{tmp}}/{TOO_LONG} runs list", 2, "File name too long"),
    Case("init-link-loop", "link-loop", "init {tmp}/loop/ws", 2, "is not usable"),
    # Store URLs that cannot be used.
    Case("store-garbage", "none", "init {ws} --store-uri garbage", 2, "not a database URL"),
    Case("store-mysql", "none", "init {ws} --store-uri mysql://u@h/db", 2, "not supported"),
    Case("store-port", "none", "init {ws} --store-uri postgresql://u:pw@h:x/db", 2, "u:***@h:x"),
    Case("store-memory", "none", "init {ws} --store-uri sqlite://", 2, "in-memory"),
    Case("store-no-dir", "none", "init {ws} --store-uri sqlite:///{tmp}/no/x.db", 2, "not exist"),
    Case("store-down", "none", f"init {{ws}} --store-uri {UNREACHABLE}", 5, "did not answer"),
    Case("store-down-kept", "healthy", f"init {{ws}} --store-uri {UNREACHABLE}", 5, "127.0.0.1:1"),
    # Blob URLs that cannot be used.
    Case("blobs-ftp", "none", "init {ws} --blob-uri ftp://example.com/b", 2, "ftp:// cannot hold"),
    Case("blobs-https", "none", "init {ws} --blob-uri https://x.org/b", 2, "https:// cannot hold"),
    Case("blobs-unknown", "none", "init {ws} --blob-uri nosuch://b", 2, "file:///PATH, memory://"),
    Case("blobs-file-host", "none", "init {ws} --blob-uri file://blobs", 2, "no local folder"),
    Case("blobs-ftp-kept", "healthy", "init {ws} --blob-uri ftp://x.org/b", 2, "cannot hold blobs"),
    Case("blobs-under-a-file", "a-file", "init {tmp}/ws2 --blob-uri {ws}/blobs", 6, "is a file"),
    Case("blobs-proc", "none", "init {ws} --blob-uri file:///proc/hb", 6, "cannot write to the"),
    # Settings from the environment.
    *[
        env_case(f"env-store-{c}", "healthy", f"-w {{ws}} {c}", 2, "not a database URL",
                 HONE_STORE_URI="garbage")
        for c in [*OPENING, "init"]
    ],
    *[
        env_case(f"env-store-port-{c}", "healthy", f"-w {{ws}} {c}", 2, "not a database URL",
                 HONE_STORE_URI="postgresql://u@h:abc/db")
        for c in OPENING
    ],
    env_case("env-store-not-utf8", "healthy", "-w {ws} runs list", 2, "HONE_STORE_URI b'",
             HONE_STORE_URI=f"sqlite:///{NOT_UTF8}"),
    env_case("env-blobs-ftp-data", "healthy", "-w {ws} data list", 2, "cannot hold blobs",
             HONE_BLOB_URI="ftp://x/b"),
    env_case("env-blobs-ftp-runs", "healthy", "-w {ws} runs list", 2, "cannot hold blobs",
             HONE_BLOB_URI="ftp://x/b"),
    env_case("env-home-file-runs", "a-file", "runs list", 4, "is a file, not a folder",
             **HOME_A_FILE),
    env_case("env-home-file-db", "a-file", "db current", 4, "is a file, not a folder",
             **HOME_A_FILE),
    env_case("env-home-file-init", "a-file", "init", 2, "is a file", **HOME_A_FILE),
]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder``: a file's bytes, None for a folder."""
    found: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            found[str(path.relative_to(folder))] = None
        elif path.is_file():
            found[str(path.relative_to(folder))] = path.read_bytes()
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input_is_one_line_an_exit_code_and_changes_nothing(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = tmp_path / "ws"

    def fill(arg: str) -> str:
        return arg.replace("{ws}", str(ws)).replace("{tmp}", str(tmp_path))

    with contextlib.ExitStack() as stack:
        STATES[case.state](ws, stack)
        for name, value in case.env.items():
            monkeypatch.setenv(name, fill(value))
        before = snapshot(tmp_path)
        capsys.readouterr()
        state.synced = False
        code = main([fill(arg) for arg in shlex.split(case.command)])
        close_trackers()  # SQLite's -wal/-shm files go with the last connection
        out, err = capsys.readouterr()
        after = snapshot(tmp_path)
    assert "Traceback" not in out + err
    assert code == case.code, err
    assert case.message in err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert after == before


def test_bytes_that_are_not_utf8_in_argv_are_one_line(tmp_path: Path) -> None:
    """A real process, so that argv really holds the bytes and stderr really encodes."""
    target = os.fsencode(tmp_path) + b"/caf\xe9"
    done = subprocess.run(
        [sys.executable, "-m", "hone.cli.main", "init", target],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    err = done.stderr.decode("utf-8", "replace").strip()
    assert done.returncode == 2 and err.count("\n") == 0, err
    assert err.startswith(f"error: the workspace path {target!r} is not UTF-8 text")
    assert list(tmp_path.iterdir()) == []


def test_db_current_names_a_store_from_a_newer_hone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _at_revision_9999(tmp_path / "ws", contextlib.ExitStack())
    capsys.readouterr()
    assert main(["-w", str(tmp_path / "ws"), "db", "current"]) == 0
    out = capsys.readouterr().out
    assert "at 9999" in out and "a newer hone wrote this store" in out
