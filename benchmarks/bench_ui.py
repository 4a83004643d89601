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

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trials
from ui_sides import (
    Client,
    Request,
    UiSizes,
    chart_child,
    mlflow_experiment_id,
    prepare,
    server_processes,
    settle,
    start,
    ui_sizes,
)
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

#: MLflow's UI page of runs (its bundle's default ``max_results``); the same on hone's side.
PAGE = 100
#: hone's own runs page (ui/src/pages/runs.js).
HONE_PAGE = 50
MLFLOW_ORDER = ["attributes.start_time DESC"]
AIMS = {"first_vs_mlflow": 10.0, "filtered_vs_mlflow": 10.0}


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


# The runs pages ----------------------------------------------------------------------------


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
    server = start(side, workdir, prepared)
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
        processes = server_processes(server)
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
    prepared = prepare(workdir, sizes, ui)
    requests = {"hone": _hone_requests()}
    if "mlflow_db" in prepared:
        requests["mlflow"] = _mlflow_requests(mlflow_experiment_id(Path(prepared["mlflow_db"])))
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


def main() -> None:
    if option("child") == "chart":
        chart_child(Path(sys.argv[1]))
        return
    from ui_chart import ui_chart

    run_selected({"ui_runs": ui_runs, "ui_chart": ui_chart})


if __name__ == "__main__":
    main()
