"""What both parts of the UI benchmark (bench_ui.py: runs pages; ui_chart.py: the chart)
stand on: the stores, built once per benchmark run; starting each side's server and
waiting until it is idle; the requests and a timing client; a server's processes."""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trials
from bench_serve import Server
from processes import children, command, cpu_s, free_port, status_kib
from workloads import SEARCH_EXPERIMENT, Sizes, emit, option

HERE = Path(__file__).resolve().parent
CHART_EXPERIMENT = "bench-chart"
CHART_KEY = "loss"


@dataclass(frozen=True)
class UiSizes:
    requests: int  # timed requests of each kind per round, on a warm server
    warmup: int  # untimed requests of each kind before them
    loads: int  # page loads of the chart per round
    chart_points: int
    metric_requests: int  # timed requests of the metric endpoint per round


def ui_sizes() -> UiSizes:
    if "--quick" in sys.argv:
        return UiSizes(requests=3, warmup=1, loads=2, chart_points=5_000, metric_requests=2)
    return UiSizes(requests=20, warmup=3, loads=4, chart_points=100_000, metric_requests=10)


def settle(server: Server, window: float = 0.5, timeout: float = 120.0) -> float:
    """Wait until the server's processes have been idle (under 5% of a core, none added or
    gone) for two windows in a row: what a server does at start is over. (MLflow's server
    answers its health check while the job runner it started still imports MLflow, which
    kept both cores busy here for seconds.) Returns the seconds waited."""
    started = time.perf_counter()
    quiet = 0
    while quiet < 2:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"the server in {server.log} was still busy after {timeout:.0f} s")
        pids = [server.proc.pid, *children(server.proc.pid)]
        before = cpu_s(pids)
        time.sleep(window)
        same = [server.proc.pid, *children(server.proc.pid)] == pids
        quiet = quiet + 1 if same and cpu_s(pids) - before < 0.05 * window else 0
    return time.perf_counter() - started


def server_processes(server: Server) -> list[dict[str, Any]]:
    """Each process of a server: its command and peak RSS (VmHWM), MiB."""
    return [
        {"cmd": command(pid), "peak_rss_mib": status_kib(pid, "VmHWM") / 1024}
        for pid in [server.proc.pid, *children(server.proc.pid)]
    ]


# The stores ---------------------------------------------------------------------------


def chart_child(workdir: Path) -> None:
    """In hone's workspace: one run with ``--points`` points of one metric."""
    import hone

    points = int(option("points") or 100_000)
    ws = hone.init(workdir / "stores" / "ws")
    with hone.start_run(CHART_EXPERIMENT, name="chart", workspace=ws) as run:
        log = run.log_metric
        for i in range(points):
            # A falling loss with a wobble and noise: no two neighbours alike.
            log(CHART_KEY, 2.0 / (1 + i / 2_000) + 0.05 * ((i * 7_919) % 1_000) / 1_000, step=i)
    stored = len(hone.get_metric_history(run.id, CHART_KEY, workspace=ws))
    if stored != points:
        raise SystemExit(f"chart run: {stored} of {points} points reached the store")
    emit({"bench": "chart_run", "run": run.id, "points": points, "key": CHART_KEY})


def prepare(workdir: Path, sizes: Sizes, ui: UiSizes) -> dict[str, Any]:
    stores = workdir / "stores"
    quick = ["--quick"] if "--quick" in sys.argv else []
    done = workdir / "prepared.json"
    if not done.exists():
        print(f"  building hone's store of {sizes.search_runs:,} runs ...", flush=True)
        built = trials.spawn(
            [
                sys.executable,
                str(HERE / "bench_hone.py"),
                str(stores),
                "--only=search_store",
                *quick,
            ],
            "hone",
            HERE,
        )
        chart = trials.spawn(
            [
                sys.executable,
                str(HERE / "bench_ui.py"),
                str(workdir),
                "--child=chart",
                f"--points={ui.chart_points}",
            ],
            "hone",
            HERE,
        )
        done.write_text(
            json.dumps(
                {
                    "ws": str(stores / "ws"),
                    "runs": sizes.search_runs,
                    "hone_build_s": built.results["search_store"]["build_s"],
                    "chart_run": chart.results["chart_run"]["run"],
                    "chart_points": chart.results["chart_run"]["points"],
                    "chart_log_s": chart.wall_s,
                }
            )
        )
    prepared: dict[str, Any] = json.loads(done.read_text())
    mlflow = option("mlflow-python")
    marker = stores / "mlflow-built.json"
    if mlflow and not marker.exists():
        print(f"  building MLflow's store of {sizes.search_runs:,} runs ...", flush=True)
        (stores / "mlflow.db").unlink(missing_ok=True)  # a build that died half way
        built = trials.spawn(
            [mlflow, str(HERE / "bench_mlflow.py"), str(stores), "--only=search_store", *quick],
            "mlflow",
            HERE,
        )
        marker.write_text(json.dumps({"build_s": built.results["search_store"]["build_s"]}))
    if mlflow:
        prepared["mlflow_db"] = str(stores / "mlflow.db")
        prepared["mlflow_build_s"] = json.loads(marker.read_text())["build_s"]
    # The builds leave dirty pages (MLflow's switch back to its rollback journal rewrites its
    # file): written out now, so that no server's first request waits behind the writeback.
    os.sync()
    return prepared


# The servers ----------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]


def mlflow_experiment_id(db: Path) -> str:
    import sqlite3

    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = connection.execute(
            "SELECT experiment_id FROM experiments WHERE name = ?", (SEARCH_EXPERIMENT,)
        ).fetchone()
    finally:
        connection.close()
    if row is None:
        raise SystemExit(f"ui_runs: no experiment {SEARCH_EXPERIMENT!r} in {db}")
    return str(row[0])


def start(side: str, workdir: Path, prepared: dict[str, Any]) -> Server:
    port = free_port()
    log = workdir / f"server-{side}.log"
    env = dict(os.environ)
    if side == "hone":
        cmd = [sys.executable, "-m", "hone.cli.main", "ui", "--workspace", prepared["ws"]]
        return Server([*cmd, "--port", str(port)], port, "/api/health", env, log)
    mlflow = Path(str(option("mlflow-python")))
    cmd = [
        str(mlflow.parent / "mlflow"),
        *("server", "--backend-store-uri", f"sqlite:///{prepared['mlflow_db']}"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--default-artifact-root", str(workdir / "mlflow-artifacts")),
    ]
    # MLflow runs `uvicorn` with its own interpreter; no calls home from a benchmark.
    env.update(
        PATH=f"{mlflow.parent}{os.pathsep}{env.get('PATH', '')}",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
    )
    return Server(cmd, port, "/health", env, log)


class Client:
    """One keep-alive connection to a server; every request timed to its last byte."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def send(self, request: Request) -> tuple[float, bytes]:
        start = time.perf_counter()
        self.connection.request(
            request.method, request.path, body=request.body, headers=request.headers
        )
        reply = self.connection.getresponse()
        body = reply.read()
        elapsed = time.perf_counter() - start
        if reply.status != 200:
            raise SystemExit(
                f"{request.method} {request.path[:120]} answered {reply.status}: {body[:300]!r}"
            )
        return 1000 * elapsed, body

    def close(self) -> None:
        self.connection.close()
