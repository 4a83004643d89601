"""Every store call has a bounded time, even when the network goes silent (issue 6,
fault 11): a run's end gives up with a warning and keeps its journal."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import hone
from hone.errors import StoreUnavailableError
from hone.store.engine import parse_store_url
from hone.store.setup import init_workspace


class SilentProxy:
    """A TCP proxy on loopback that can stop forwarding while keeping its sockets open:
    the peer still acknowledges every packet, and answers nothing."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        #: Freeze by itself once the server says it is ready for a first query: the
        #: connection is made, and then that first query is never answered.
        self.freeze_after_startup = False
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.frozen = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            if self.frozen.is_set():
                time.sleep(0.05)  # hold everything; read nothing, send nothing
                continue
            try:
                source.settimeout(0.05)
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                sink.sendall(data)
            except OSError:
                return
            if self.freeze_after_startup and b"Z\x00\x00\x00\x05" in data:  # ReadyForQuery
                self.frozen.set()

    def close(self) -> None:
        self.server.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[tuple[SilentProxy, str]]:
    url = parse_store_url(postgres_url)
    silent = SilentProxy((url.host or "127.0.0.1", url.port or 5432))
    yield silent, url.set(port=silent.port).render_as_string(hide_password=False)
    silent.close()


@pytest.mark.slow
def test_a_run_ends_in_bounded_time_when_the_store_goes_silent(
    proxy: tuple[SilentProxy, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    silent, url = proxy
    monkeypatch.setenv("HONE_STORE_TIMEOUT", "2")
    ws, _ = init_workspace(tmp_path / "ws", store_uri=url)
    run = hone.start_run("silent", workspace=ws)
    run.log_metric("loss", 1.0)
    run.fetch()  # a pooled connection, through the proxy
    silent.frozen.set()
    run.log_metric("loss", 0.5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "hone.tracking"):
        run.end()
    assert time.monotonic() - started < 15
    assert "did not answer within 2 s" in caplog.text and "is kept" in caplog.text
    assert list(ws.journal_dir.glob("*.jnl"))  # nothing lost: the journal waits
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        hone.sync(workspace=ws)
    assert time.monotonic() - started < 15
    silent.frozen.clear()
    from hone.tracking.tracker import close_trackers

    close_trackers()  # the connections the watchdog cut are gone; start afresh
    hone.sync(workspace=ws)
    got = hone.get_run(run.id, workspace=ws)
    assert got.status is hone.RunStatus.FINISHED and got.metrics["loss"].value == 0.5


@pytest.mark.slow
def test_a_first_connection_that_goes_silent_is_bounded_too(
    proxy: tuple[SilentProxy, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The very first connection of a process runs the driver's own setup queries (server
    version, settings) before hone's: they are watched too."""
    from hone.store.database import Database

    silent, url = proxy
    silent.freeze_after_startup = True
    monkeypatch.setenv("HONE_STORE_TIMEOUT", "2")
    db = Database(url)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="did not answer within 2 s"):
        db.check_schema()
    assert time.monotonic() - started < 15
    db.dispose()


def test_a_sqlite_writer_waits_no_longer_than_the_store_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from hone.store.database import Database

    ws, _ = init_workspace(tmp_path / "ws")
    locker = sqlite3.connect(ws.home / "hone.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    monkeypatch.setenv("HONE_STORE_TIMEOUT", "1.5")
    db = Database(ws.store_uri)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError, match="locked"), db.write():
            pass
        assert 1.0 < time.monotonic() - started < 10
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        db.dispose()
