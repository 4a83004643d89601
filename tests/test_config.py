"""Workspace resolution: argument, environment, hone.toml, defaults — and no side effects."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from hone.config import Workspace
from hone.errors import ValidationError, WorkspaceError


def test_defaults_live_under_the_workspace(tmp_path: Path) -> None:
    ws = Workspace.discover(tmp_path / "ws")
    assert ws.store_uri == f"sqlite:///{tmp_path / 'ws' / 'hone.db'}"
    assert ws.blob_uri == (tmp_path / "ws" / "blobs").as_uri()
    assert ws.journal_dir == tmp_path / "ws" / "journals"
    assert not (tmp_path / "ws").exists()


def test_default_home_is_dot_hone_in_the_working_directory(tmp_path: Path) -> None:
    assert Workspace.discover().home == tmp_path / ".hone"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.discover(tmp_path / "ws")
    ws.write_config(store_uri="postgresql://db/from-toml", blob_uri="s3://bucket/toml")
    assert Workspace.discover(tmp_path / "ws").store_uri == "postgresql://db/from-toml"
    monkeypatch.setenv("HONE_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("HONE_STORE_URI", "postgresql://db/from-env")
    found = Workspace.discover()
    assert found.store_uri == "postgresql://db/from-env"
    assert found.blob_uri == "s3://bucket/toml"
    assert Workspace.discover(store_uri="sqlite:///arg.db").store_uri == "sqlite:///arg.db"


def test_a_broken_config_is_reported(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "hone.toml").write_text("[store\nuri = 1")
    with pytest.raises(WorkspaceError, match="cannot read"):
        Workspace.discover(tmp_path / "ws")
    (tmp_path / "ws" / "hone.toml").write_text("[store]\nuri = 5\n")
    with pytest.raises(WorkspaceError, match="must be a non-empty string"):
        Workspace.discover(tmp_path / "ws")


def test_require_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="run `hone init"):
        Workspace.discover(tmp_path / "none").require()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)), "not UTF-8 text"),
        ("[store]\nuri = 'caf\xe9'\n".encode("latin-1"), "not UTF-8 text"),
        (b"[store\nuri = 1", "not valid TOML"),
        (b"store = 5\n", "must be a \\[store\\] table"),
        (b"[blobs]\nuri = ['a']\n", "\\[blobs\\] uri must be a non-empty string"),
        (b"[store]\nuri = ''\n", "must be a non-empty string"),
        (b'[store]\nuri = "a\\u0000b"\n', "NUL byte"),
    ],
    ids=["binary", "latin-1", "invalid", "section-not-a-table", "uri-a-list", "empty", "nul"],
)
def test_a_damaged_config_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "hone.toml").write_bytes(content)
    with pytest.raises(WorkspaceError, match=message):
        Workspace.discover(tmp_path / "ws")


@pytest.mark.parametrize("variable", ["HONE_HOME", "HONE_STORE_URI", "HONE_BLOB_URI"])
def test_settings_that_are_not_utf8_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # Bytes that are not UTF-8 reach Python as surrogate escapes (argv and environ alike).
    value = os.fsdecode(str(tmp_path).encode() + b"/caf\xe9")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=r"b'.*caf\\xe9' is not UTF-8 text"):
        Workspace.discover()


def test_a_workspace_path_that_is_a_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WorkspaceError, match="is a file, not a folder"):
        Workspace.discover(tmp_path / "file").require()


def test_concurrent_config_writes_all_succeed_and_readers_see_whole_files(
    tmp_path: Path,
) -> None:
    ws = Workspace.discover(tmp_path / "ws")
    ws.write_config(store_uri="sqlite:///start.db", blob_uri=None)
    errors: list[BaseException] = []
    seen: set[str] = set()

    def write(writer: int) -> None:
        try:
            for i in range(50):
                ws.write_config(store_uri=f"sqlite:///{writer}-{i}.db", blob_uri=None)
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            for _ in range(200):
                seen.add(Workspace.discover(tmp_path / "ws").store_uri)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(uri.startswith("sqlite:///") and uri.endswith(".db") for uri in seen)
    assert sorted(p.name for p in ws.home.iterdir()) == ["hone.toml"]  # no temp file left


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:////data/\U0001f600/hone.db",  # beyond U+FFFF: JSON would write surrogates
        'postgresql://u:p"q\\r@h/db',
        "file:///data/tab\there/del\x7f/new\nline",
        "s3://bücket/é",
    ],
)
def test_any_uri_written_to_hone_toml_reads_back(tmp_path: Path, uri: str) -> None:
    ws = Workspace.discover(tmp_path / "ws")
    ws.write_config(store_uri=uri, blob_uri=uri)
    again = Workspace.discover(tmp_path / "ws")
    assert (again.store_uri, again.blob_uri) == (uri, uri)


def test_settings_of_the_wrong_type_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="workspace path must be a str or a path, not int"):
        Workspace.discover(5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="store URI must be a string, not int"):
        Workspace.discover(tmp_path, store_uri=5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="workspace path must be text, not bytes"):
        Workspace.discover(b"/tmp")  # type: ignore[arg-type]


def test_a_config_that_is_a_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "ws" / "hone.toml").mkdir(parents=True)
    with pytest.raises(WorkspaceError, match=r"hone\.toml is not a file"):
        Workspace.discover(tmp_path / "ws").require()
