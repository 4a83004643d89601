"""Web UI benchmark; prints RESULT lines (run_all.py collects them).

    python benchmarks/bench_ui.py WORKDIR [--quick] [--only=ui_runs,ui_chart] [--pairs=N]
                                  [--mlflow-python=PATH]

The stores, built once per benchmark run (not a figure): benchmark 3's search stores, by the
same code (``bench_hone.py`` / ``bench_mlflow.py --only=search_store``): ``search_runs``
runs (10,000; 100 with ``--quick``) of 10 params and 10 metrics each (``workloads.py``'s
``run_params`` / ``run_metrics``), created one after the other by each side's own client
(MLflow: ``start_run``, ``log_params``, ``log_metrics``, ``end_run``; its store is built on
WAL and switched back to its default rollback journal before any server reads it); then,
in hone's workspace only, one run in an experiment of its own with ``chart_points``
(100,000; 5,000 with ``--quick``) points of one metric.

``ui_runs``: the request each UI makes for a page of the runs table, against a server
started from nothing on loopback, one process a side, the order rotating over
``cheap_pairs`` rounds:

- ``hone``: ``hone ui --workspace WS`` (uvicorn, one process), ``GET /api/runs?experiment=
  bench-runs[&filter=F]&offset=0&limit=N&total=false``: the page's request for its rows.
  Beside it the page asks ``GET /api/runs/count?experiment=bench-runs[&filter=F]`` for the
  count its pager shows (MLflow's UI shows no count): measured as ``*_count``, and the
  API's one-request form (rows and count, ``*_total``) too.
- ``mlflow`` (with ``--mlflow-python``): ``mlflow server --backend-store-uri sqlite:///…
  --workers 1`` (uvicorn, MLflow's default server, one worker), ``POST
  /ajax-api/2.0/mlflow/runs/search`` with the body MLflow's UI sends (its bundled
  JavaScript, MLflow 3.17.2): ``{"experiment_ids": [ID], "run_view_type": "ACTIVE_ONLY",
  "max_results": 100, "order_by": ["attributes.start_time DESC"]}`` and ``"filter": F``
  for the filtered page (the UI leaves ``filter`` out when there is none).

N = 100 on both sides: MLflow's UI page (hone's own UI asks for 50: measured beside, hone
only, as ``page50``). F = ``workloads.SEARCH_FILTER`` (``metrics.m0 > 0.5 and params.p1 =
'a'``), the same string on both sides. Order: newest first on both (MLflow's UI default,
``start_time DESC``; hone's default order). Every round checks that both sides return the
same runs in the same order (the ``p0`` param numbers each run) and hone's counts the number
of runs and of matches, all computed from the workload without a store.

A round, per side: start the server, wait for its health endpoint (it touches no runs) and
then for its processes to go idle (``settle``: MLflow's server answers while the job runner
it starts, and the Huey consumers that runner starts, are still importing MLflow, which kept
both cores busy for 10-15 s here); the first page (``cold_first_ms``: the first request that
reads the store), then the filtered page (``cold_filtered_ms``); ``warmup`` more of each;
then ``requests`` rounds of every kind of request in turn on one keep-alive connection
(hone's kinds: ``first``, ``filtered`` (rows), ``first_count``, ``filtered_count``,
``first_total``, ``filtered_total`` and ``page50``; MLflow's: ``first``, ``filtered``).
Each request is timed by this process from sending it to the last byte of the answer
(``http.client``, not parsed). Figures per round: the median of each kind; then median
[range] over rounds; ratios per round (MLflow's time over hone's), then median [range]. Peak
RSS: VmHWM of the serving process (``serving_peak_rss_mib``) and of all the server's
processes, summed (``peak_rss_mib``; MLflow's ``mlflow server`` starts ``uvicorn`` and a job
runner with its consumers; each is in ``processes``).

``ui_chart`` (hone only; Chromium): the run page of the 100,000-point run,
``http://127.0.0.1:PORT/#/runs/RUN_ID``, loaded ``loads`` times a round, each in a new
browser context (nothing cached) of one Debian Chromium driven by Playwright, against a
server started from nothing each round. The page fetches the run, then
``GET /api/runs/RUN_ID/metric?key=loss`` (the whole series, as columns) and draws it with
uPlot, which marks the chart ``data-drawn`` and sets ``window.__honeDrawn =
performance.now()`` (ms since the navigation started) on every draw; an init script keeps
the first (``drawn_ms``) and the next animation frame after it (``frame_ms``: the drawn
canvas presented). From the page's Resource Timing: when the metric's answer started and
ended, its size; ``after_metric_ms`` is parsing and drawing. Then ``metric_requests``
requests of the metric endpoint from this process (warm server): its server time and bytes.

Aims: both runs pages >= 10x faster than MLflow's search endpoint (warm medians), the
100,000-point chart drawn < 1 s after navigation.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trials
from bench_serve import Server
from workloads import (
    SEARCH_EXPERIMENT,
    SEARCH_FILTER,
    Sizes,
    emit,
    option,
    run_metrics,
    run_params,
    run_selected,
)

HERE = Path(__file__).resolve().parent
#: MLflow's UI page of runs (its bundle's default ``max_results``); the same on hone's side.
PAGE = 100
#: hone's own runs page (ui/src/pages/runs.js).
HONE_PAGE = 50
MLFLOW_ORDER = ["attributes.start_time DESC"]
CHART_EXPERIMENT = "bench-chart"
CHART_KEY = "loss"
AIMS = {"first_vs_mlflow": 10.0, "filtered_vs_mlflow": 10.0, "chart_drawn_ms": 1000.0}
CHROMIUM = os.environ.get("HONE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}
#: Keeps the first draw's time (uPlot draws again when its ResizeObserver first fires) and
#: the animation frame after it. Playwright injects it; the page's CSP does not apply.
FIRST_DRAW = """
(() => {
  let last;
  Object.defineProperty(window, "__honeDrawn", {
    configurable: true,
    get() { return last; },
    set(value) {
      if (window.__benchFirstDrawn === undefined) {
        window.__benchFirstDrawn = value;
        requestAnimationFrame(() => { window.__benchFrame = performance.now(); });
      }
      window.__benchDraws = (window.__benchDraws || 0) + 1;
      last = value;
    },
  });
})();
"""
COLLECT = """
(runId) => {
  const entries = performance.getEntriesByType("resource");
  const one = (test) => {
    const e = entries.find(test);
    return e ? {start: e.startTime, request: e.requestStart, first_byte: e.responseStart,
                end: e.responseEnd, bytes: e.encodedBodySize} : null;
  };
  const nav = performance.getEntriesByType("navigation")[0];
  return {
    drawn: window.__benchFirstDrawn,
    last_drawn: window.__honeDrawn,
    draws: window.__benchDraws,
    frame: window.__benchFrame,
    html_end: nav ? nav.responseEnd : null,
    app_js: one((e) => e.name.endsWith("/assets/app.js")),
    run: one((e) => e.name.endsWith("/api/runs/" + runId)),
    metric: one((e) => e.name.includes("/api/runs/" + runId + "/metric?")),
  };
}
"""


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``, also those a thread other than the main one started
    (MLflow's job runner starts its Huey consumers from threads: each thread's children are
    listed under that thread's own task)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        for child in map(int, text.split()):
            found += [child, *_children(child)]
    return found


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


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
        pids = [server.proc.pid, *_children(server.proc.pid)]
        before = _cpu_s(pids)
        time.sleep(window)
        same = [server.proc.pid, *_children(server.proc.pid)] == pids
        quiet = quiet + 1 if same and _cpu_s(pids) - before < 0.05 * window else 0
    return time.perf_counter() - started


def _processes(server: Server) -> list[dict[str, Any]]:
    """Each process of a server: its command and peak RSS (VmHWM), MiB."""
    found = []
    for pid in [server.proc.pid, *_children(server.proc.pid)]:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        peak = next((float(s.split()[1]) / 1024 for s in status if s.startswith("VmHWM:")), 0.0)
        shown = " ".join(part.decode(errors="replace") for part in cmd[:4] if part)
        found.append({"cmd": shown[:120], "peak_rss_mib": peak})
    return found


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


def _prepare(workdir: Path, sizes: Sizes, ui: UiSizes) -> dict[str, Any]:
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


# What each page must show, from the workload alone --------------------------------------


def expected_pages(runs: int, page: int) -> dict[str, list[str]]:
    """The ``p0`` of each run on the first page and the filtered one, newest first."""
    newest = range(runs - 1, -1, -1)
    hits = [str(i) for i in newest if run_metrics(i)["m0"] > 0.5 and run_params(i)["p1"] == "a"]
    return {
        "first": [str(i) for i in newest][:page],
        "filtered": hits[:page],
        "hits": [str(len(hits))],
    }


# The servers ----------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]


def _hone_requests() -> dict[str, Request]:
    headers = {"Accept": "application/json"}

    def page(limit: int, **extra: str) -> Request:
        query = {"experiment": SEARCH_EXPERIMENT, **extra, "offset": "0", "limit": str(limit)}
        return Request("GET", f"/api/runs?{urlencode(query)}", None, headers)

    def count(**extra: str) -> Request:
        query = {"experiment": SEARCH_EXPERIMENT, **extra}
        return Request("GET", f"/api/runs/count?{urlencode(query)}", None, headers)

    # The page asks for its rows (total=false) and, beside them, the count of matches.
    return {
        "first": page(PAGE, total="false"),
        "filtered": page(PAGE, filter=SEARCH_FILTER, total="false"),
        "first_count": count(),
        "filtered_count": count(filter=SEARCH_FILTER),
        "first_total": page(PAGE),  # rows and count in one answer: the API's default
        "filtered_total": page(PAGE, filter=SEARCH_FILTER),
        "page50": page(HONE_PAGE, total="false"),
    }


def _mlflow_requests(experiment_id: str) -> dict[str, Request]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def search(**extra: str) -> Request:
        body = {
            "experiment_ids": [experiment_id],
            **extra,
            "run_view_type": "ACTIVE_ONLY",
            "max_results": PAGE,
            "order_by": MLFLOW_ORDER,
        }
        path = "/ajax-api/2.0/mlflow/runs/search"
        return Request("POST", path, json.dumps(body).encode(), headers)

    return {"first": search(), "filtered": search(filter=SEARCH_FILTER)}


def _p0s(side: str, body: bytes) -> list[str]:
    found = json.loads(body)
    if side == "hone":
        return [str(run["params"].get("p0")) for run in found["runs"]]
    return [
        next((p["value"] for p in run["data"].get("params", []) if p["key"] == "p0"), "?")
        for run in found.get("runs", [])
    ]


def _mlflow_experiment_id(db: Path) -> str:
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


def _start(side: str, workdir: Path, prepared: dict[str, Any]) -> Server:
    port = _free_port()
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


def _check(side: str, kind: str, body: bytes, expected: dict[str, list[str]]) -> None:
    found = _p0s(side, body)
    if found != expected[kind]:
        raise SystemExit(
            f"ui_runs: {side}'s {kind} page holds other runs than expected "
            f"(p0 {found[:5]}... against {expected[kind][:5]}...)"
        )


def _check_counts(client: Client, requests: dict[str, Request], runs: int, hits: int) -> None:
    """hone's counts: every run of the experiment, and the filter's matches."""
    for kind, want in (("first_count", runs), ("filtered_count", hits)):
        total = json.loads(client.send(requests[kind])[1])["total"]
        if total != want:
            raise SystemExit(f"ui_runs: hone's {kind} is {total}, not {want}")


def _runs_round(
    side: str,
    workdir: Path,
    prepared: dict[str, Any],
    requests: dict[str, Request],
    expected: dict[str, list[str]],
    ui: UiSizes,
) -> dict[str, Any]:
    started = time.perf_counter()
    server = _start(side, workdir, prepared)
    found: dict[str, Any] = {"ready_s": time.perf_counter() - started}
    found["settle_s"] = settle(server)
    client = Client(server.port)
    try:
        found["cold_first_ms"], body = client.send(requests["first"])
        _check(side, "first", body, expected)
        found["cold_filtered_ms"], body = client.send(requests["filtered"])
        _check(side, "filtered", body, expected)
        if side == "hone":
            _check_counts(client, requests, prepared["runs"], int(expected["hits"][0]))
        for _ in range(ui.warmup):
            for request in requests.values():
                client.send(request)
        times: dict[str, list[float]] = {kind: [] for kind in requests}
        sizes: dict[str, int] = {}
        for _ in range(ui.requests):
            for kind, request in requests.items():
                ms, body = client.send(request)
                times[kind].append(ms)
                sizes[kind] = len(body)
        _check(side, "first", client.send(requests["first"])[1], expected)
        processes = _processes(server)
    finally:
        client.close()
        code = server.stop()
    for kind, values in times.items():
        found[f"{kind}_ms"] = statistics.median(values)
        found[f"{kind}_ms_min"] = min(values)
        found[f"{kind}_ms_max"] = max(values)
        found[f"{kind}_bytes"] = sizes[kind]
    found["peak_rss_mib"] = sum(p["peak_rss_mib"] for p in processes)
    serving = next((p for p in processes if "uvicorn" in p["cmd"]), processes[0])
    found["serving_peak_rss_mib"] = serving["peak_rss_mib"]
    found["processes"] = processes
    found["exit"] = code
    return found


def ui_runs(workdir: Path, sizes: Sizes) -> None:
    ui = ui_sizes()
    prepared = _prepare(workdir, sizes, ui)
    requests = {"hone": _hone_requests()}
    if "mlflow_db" in prepared:
        requests["mlflow"] = _mlflow_requests(_mlflow_experiment_id(Path(prepared["mlflow_db"])))
    sides = list(requests)
    expected = expected_pages(prepared["runs"], PAGE)
    rounds: list[dict[str, dict[str, Any]]] = []
    for r in range(sizes.cheap_pairs):
        shift = r % len(sides)
        row: dict[str, dict[str, Any]] = {}
        for side in sides[shift:] + sides[:shift]:
            found = _runs_round(side, workdir, prepared, requests[side], expected, ui)
            row[side] = found
            print(
                f"  ui runs round {r + 1}/{sizes.cheap_pairs} {side}: first page "
                f"{found['first_ms']:.1f} ms, filtered {found['filtered_ms']:.1f} ms "
                f"(cold {found['cold_first_ms']:.0f} ms), peak {found['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
        rounds.append(row)
    out: dict[str, Any] = {
        "bench": "ui_runs",
        "runs": prepared["runs"],
        "page": PAGE,
        "filter": SEARCH_FILTER,
        "matches": int(expected["hits"][0]),
        "rounds": sizes.cheap_pairs,
        "requests_per_round": ui.requests,
        "aims": {k: v for k, v in AIMS.items() if k.endswith("_vs_mlflow")},
        "store_build_s": {
            side: prepared[f"{side}_build_s"] for side in sides if f"{side}_build_s" in prepared
        },
        "calls": {
            side: {
                kind: f"{q.method} {q.path}" + (f" {q.body.decode()}" if q.body else "")
                for kind, q in requests[side].items()
            }
            for side in sides
        },
        "sides": {},
        "ratios": {},
        "per_round": rounds,
    }
    for side in sides:
        keys = [k for k, v in rounds[0][side].items() if isinstance(v, int | float)]
        out["sides"][side] = {
            key: trials.spread([float(row[side][key]) for row in rounds]) for key in keys
        }
    if "mlflow" in sides:
        for kind in ("first", "filtered", "cold_first", "cold_filtered"):
            out["ratios"][f"{kind}_vs_mlflow"] = trials.spread(
                [row["mlflow"][f"{kind}_ms"] / row["hone"][f"{kind}_ms"] for row in rounds]
            )
        out["passed"] = {
            name: out["ratios"][name]["median"] >= aim for name, aim in out["aims"].items()
        }
    emit(out)


# The chart ------------------------------------------------------------------------------


def _load(browser: Any, url: str, run_id: str, points: int) -> dict[str, Any]:
    """One navigation to the run page in a new context, until the chart is drawn."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.add_init_script(script=FIRST_DRAW)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        selector = f".chart-box[data-metric='{CHART_KEY}'] .chart[data-drawn]"
        started = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_selector(selector, timeout=120_000)
        seen = time.perf_counter() - started
        page.wait_for_function("() => window.__benchFrame !== undefined", timeout=30_000)
        found: dict[str, Any] = page.evaluate(COLLECT, run_id)
        drawn = page.get_attribute(selector, "data-drawn")
    finally:
        context.close()
    if errors:
        raise SystemExit(f"ui_chart: the page failed: {errors[:3]}")
    if drawn != str(points):
        raise SystemExit(f"ui_chart: the chart drew {drawn} points, not {points}")
    metric = found.get("metric") or {}
    if not metric:
        raise SystemExit("ui_chart: the page's Resource Timing has no metric request")
    found["wall_ms"] = 1000 * seen
    found["after_metric_ms"] = found["drawn"] - metric["end"]
    return found


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (Debian's chromium package)"
    return None


def ui_chart(workdir: Path, sizes: Sizes) -> None:
    missing = _browser_missing()
    if missing:
        raise SystemExit(f"ui_chart: {missing}")
    from playwright.sync_api import sync_playwright

    ui = ui_sizes()
    prepared = _prepare(workdir, sizes, ui)
    run_id, points = prepared["chart_run"], prepared["chart_points"]
    metric = Request(
        "GET",
        f"/api/runs/{run_id}/metric?{urlencode({'key': CHART_KEY})}",
        None,
        {"Accept": "application/json"},
    )
    loads: list[list[dict[str, Any]]] = []
    servers: list[dict[str, Any]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        version = str(browser.version)
        try:
            for r in range(sizes.cheap_pairs):
                server = _start("hone", workdir, prepared)
                settle(server)
                client = Client(server.port)
                try:
                    url = f"http://127.0.0.1:{server.port}/#/runs/{run_id}"
                    these = [_load(browser, url, run_id, points) for _ in range(ui.loads)]
                    served = [client.send(metric) for _ in range(ui.metric_requests)]
                    processes = _processes(server)
                finally:
                    client.close()
                    server.stop()
                if len(json.loads(served[-1][1])["step"]) != points:
                    raise SystemExit("ui_chart: the metric endpoint lost points")
                loads.append(these)
                servers.append(
                    {
                        "metric_ms": statistics.median(ms for ms, _ in served),
                        "metric_bytes": len(served[-1][1]),
                        "peak_rss_mib": sum(p["peak_rss_mib"] for p in processes),
                    }
                )
                print(
                    f"  ui chart round {r + 1}/{sizes.cheap_pairs}: drawn at "
                    + ", ".join(f"{load['drawn']:.0f}" for load in these)
                    + f" ms; metric endpoint {servers[-1]['metric_ms']:.0f} ms, "
                    f"peak {servers[-1]['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
        finally:
            browser.close()
    every = [load for these in loads for load in these]

    def over_loads(key: str) -> dict[str, Any]:
        return trials.spread([float(load[key]) for load in every])

    def metric_part(key: str) -> dict[str, Any]:
        return trials.spread([float(load["metric"][key]) for load in every])

    drawn = over_loads("drawn")
    emit(
        {
            "bench": "ui_chart",
            "points": points,
            "rounds": sizes.cheap_pairs,
            "loads_per_round": ui.loads,
            "chromium": version,
            "aims": {"chart_drawn_ms": AIMS["chart_drawn_ms"]},
            "drawn_ms": drawn,
            "first_load_drawn_ms": trials.spread([these[0]["drawn"] for these in loads]),
            "frame_ms": over_loads("frame"),
            "last_drawn_ms": over_loads("last_drawn"),
            "draws": over_loads("draws"),
            "wall_ms": over_loads("wall_ms"),
            "metric_start_ms": metric_part("start"),
            "metric_first_byte_ms": metric_part("first_byte"),
            "metric_end_ms": metric_part("end"),
            "after_metric_ms": over_loads("after_metric_ms"),
            "metric_page_bytes": metric_part("bytes"),
            "metric_server_ms": trials.spread([s["metric_ms"] for s in servers]),
            "metric_bytes": servers[-1]["metric_bytes"],
            "peak_rss_mib": trials.spread([s["peak_rss_mib"] for s in servers]),
            "loads": loads,
            "passed": {"chart_drawn_ms": drawn["median"] < AIMS["chart_drawn_ms"]},
        }
    )


def main() -> None:
    if option("child") == "chart":
        chart_child(Path(sys.argv[1]))
        return
    run_selected({"ui_runs": ui_runs, "ui_chart": ui_chart})


if __name__ == "__main__":
    main()
