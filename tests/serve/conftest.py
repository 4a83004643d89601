"""A served digits model: a trained workspace with two registered versions (digits@1, the
stronger, is ``champion``), and real ``hone serve`` processes on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import pytest

import hone.models
from hone.config import Workspace
from hone.store.database import Database
from hone.tracking.tracker import close_trackers
from tests.models.conftest import Trained, train_digits

HONE = [sys.executable, "-m", "hone.cli.main"]


@dataclass(frozen=True)
class Served:
    trained: Trained
    rows: np.ndarray  # the test split's raw features
    labels: np.ndarray

    @property
    def ws(self) -> Workspace:
        return self.trained.ws


def register_two(trained: Trained) -> None:
    hone.models.register("digits", run=trained.strong, workspace=trained.ws)
    hone.models.register("digits", run=trained.weak, workspace=trained.ws)
    hone.models.alias("digits@1", "champion", workspace=trained.ws)


def make_served(home: Path, store_uri: str | None = None) -> Served:
    trained = train_digits(home, store_uri=store_uri)
    register_two(trained)
    rows, labels = trained.raw.to_numpy("test")
    assert labels is not None
    return Served(trained, np.array(rows, np.float64), np.array(labels))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield make_served(tmp_path_factory.mktemp("served") / "ws")
    close_trackers()


@contextlib.contextmanager
def store_locked(db: Database) -> Iterator[None]:
    """Another process's exclusive lock on a SQLite store: every write fails past the busy
    timeout, as with a store that cannot be reached."""
    path = db.sqlite_path()
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A ``hone serve`` process."""

    proc: subprocess.Popen[str]
    url: str
    token: str | None = None
    output: str = ""
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def predict(self, rows: Any, model: str = "digits") -> httpx.Response:
        instances = rows.tolist() if isinstance(rows, np.ndarray) else rows
        return self.client.post(f"/v1/models/{model}/predict", json={"instances": instances})

    def feedback(self, body: Any) -> httpx.Response:
        return self.client.post("/v1/feedback", json=body)

    def metric(self, name: str) -> float:
        """The sum of a Prometheus series' samples whose name and labels start so."""
        text = self.client.get("/metrics").text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.output += out or ""
        return self.proc.returncode


def start_server(
    ws: Workspace,
    ref: str,
    *args: str,
    token: str | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "HONE_HOME": str(ws.home),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        **(env or {}),
    }
    env.pop("HONE_SERVE_TOKEN", None)
    extra = ["--token", token] if token else []
    proc = subprocess.Popen(
        [*HONE, "serve", ref, "--port", str(port), *extra, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(proc, f"http://127.0.0.1:{port}", token)
    wait_until_up(server, "/healthz", "hone serve", 90, lambda: server.stop(signal.SIGKILL))
    return server


class Started(Protocol):
    """A hone server process a test started (``hone serve``, ``hone ui``)."""

    proc: subprocess.Popen[str]
    url: str
    output: str

    def stop(self) -> int: ...


def wait_until_up(
    started: Started, health: str, what: str, timeout: float, give_up: Callable[[], object]
) -> None:
    """Until ``health`` answers 200; the process's output in the failure if it exits first
    or does not answer in ``timeout`` seconds (``give_up`` stops it then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.proc.poll() is not None:
            started.stop()
            raise AssertionError(f"{what} exited {started.proc.returncode}:\n{started.output}")
        try:
            if httpx.get(f"{started.url}{health}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    give_up()
    raise AssertionError(f"{what} did not answer in {timeout:.0f} s:\n{started.output}")


StartServer = Callable[..., Server]


@pytest.fixture
def server_of(served: Served) -> Iterator[StartServer]:
    """Starts servers on the module's workspace; stops them after the test."""
    started: list[Server] = []

    def start(
        ref: str = "digits@champion",
        *args: str,
        token: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Server:
        server = start_server(served.ws, ref, *args, token=token, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.stop(signal.SIGTERM)
