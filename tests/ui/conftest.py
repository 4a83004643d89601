"""A workspace with everything the UI shows (trained runs with curves, a dataset with its
versions, two registered versions, recorded predictions, a run named like an attack), real
``hone ui`` processes on loopback, and Debian's Chromium driven by Playwright.

Without Chromium or Playwright the browser tests skip locally; in CI (CI=true) they fail."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import hone
from hone.config import Workspace
from hone.tracking.tracker import close_trackers
from tests.serve.conftest import HONE, free_port, make_served, start_server, wait_until_up

CHROMIUM = os.environ.get("HONE_TEST_CHROMIUM", "/usr/bin/chromium")
# As root on a machine with no network beyond loopback: no sandbox (needs user namespaces),
# no GPU, and none of the background calls home that this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
]
XSS_NAME = "<script>alert(1)</script>"
XSS_PARAM = '<img src=x onerror="alert(2)">'
PREDICTIONS = 24


@dataclass(frozen=True)
class UiWorkspace:
    ws: Workspace
    sweep: list[str]  # two runs with a loss curve each, in experiment "sweep"
    xss: str  # the run named like an attack
    trained: str  # a real training run (4 epochs), with checkpoints and inputs
    request_ids: list[str]  # recorded predictions of digits, unlabeled
    study: str  # the run of a 10-trial study of a function of two params


def _sweep_runs(ws: Workspace) -> list[str]:
    ids = []
    for i, lr in enumerate(("0.1", "0.01")):
        with hone.start_run(
            "sweep", name=f"sweep-{i}", params={"lr": lr, "opt": "sgd"}, workspace=ws
        ) as run:
            for step in range(50):
                run.log_metric("loss", (1.0 + i) / (step + 1), step=step)
            run.log_metric("acc", 0.8 + 0.1 * i, step=49)
        ids.append(run.id)
    return ids


def _xss_run(ws: Workspace) -> str:
    with hone.start_run(
        "sweep",
        name=XSS_NAME,
        params={"note": XSS_PARAM},
        tags={"who": "<b>bold</b>"},
        workspace=ws,
    ) as run:
        run.log_metric("acc", 0.5, step=0)
    return run.id


def _study(ws: Workspace) -> str:
    from hone.tune import optimize

    def bowl(trial: Any) -> float:
        x = trial.suggest_float("x", -4.0, 4.0)
        width = trial.suggest_categorical("width", ["narrow", "wide"])
        return float(-((x - 1.0) ** 2) * (2.0 if width == "narrow" else 1.0))

    return optimize(bowl, n_trials=10, study="bowl", seed=0, workspace=ws).run_id


def _record_predictions(ws: Workspace, rows: Any) -> list[str]:
    server = start_server(ws, "digits@champion")
    try:
        answer = server.predict(rows[:PREDICTIONS])
        assert answer.status_code == 200, answer.text
        ids = [p["request_id"] for p in answer.json()["predictions"]]
    finally:
        server.stop()  # SIGTERM: what was answered is written first
    return ids


@pytest.fixture(scope="package")
def ui_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiWorkspace]:
    served = make_served(tmp_path_factory.mktemp("ui") / "ws")
    ws = served.ws
    made = UiWorkspace(
        ws=ws,
        sweep=_sweep_runs(ws),
        xss=_xss_run(ws),
        trained=served.trained.strong,
        request_ids=_record_predictions(ws, served.rows),
        study=_study(ws),
    )
    yield made
    close_trackers()


@dataclass
class Ui:
    """A ``hone ui`` process."""

    proc: subprocess.Popen[str]
    url: str
    output: str = ""
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def csrf(self) -> dict[str, str]:
        session = self.client.get("/api/session").json()
        return {session["csrf_header"]: session["csrf"]}

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.output += out or ""
        return self.proc.returncode


def start_ui(
    ws: Workspace,
    *args: str,
    host: str = "127.0.0.1",
    token: str | None = None,
    port: int | None = None,
) -> Ui:
    port = port or free_port()
    env = {**os.environ, "HONE_HOME": str(ws.home), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    env.pop("HONE_UI_TOKEN", None)
    extra = ["--token", token] if token else []
    proc = subprocess.Popen(
        [*HONE, "ui", "--host", host, "--port", str(port), *extra, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ui = Ui(proc, f"http://127.0.0.1:{port}")
    wait_until_up(ui, "/api/health", "hone ui", 60, ui.stop)
    return ui


@pytest.fixture(scope="package")
def ui(ui_workspace: UiWorkspace) -> Iterator[Ui]:
    started = start_ui(ui_workspace.ws)
    yield started
    started.stop()


StartUi = Callable[..., Ui]


@pytest.fixture
def ui_of(ui_workspace: UiWorkspace) -> Iterator[StartUi]:
    started: list[Ui] = []

    def start(
        *args: str, host: str = "127.0.0.1", token: str | None = None, port: int | None = None
    ) -> Ui:
        one = start_ui(ui_workspace.ws, *args, host=host, token=token, port=port)
        started.append(one)
        return one

    yield start
    for one in started:
        one.stop()


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (Debian's chromium package)"
    return None


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests must run in CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page; every script error or dialog fails the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))

    def dialog(opened: Any) -> None:
        problems.append(f"dialog: {opened.message}")
        opened.dismiss()

    page.on("dialog", dialog)
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert not problems, problems
