"""The UI benchmark's chart part (``ui_chart``; bench_ui.py's docstring says what it
measures): the run page of a run with 100,000 points of one metric, loaded in Debian's
Chromium through Playwright, timed from the navigation to the drawn chart."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trials
from ui_sides import (
    CHART_KEY,
    Client,
    Request,
    prepare,
    server_processes,
    settle,
    start,
    ui_sizes,
)
from workloads import Sizes, emit

#: The aim: the chart drawn within this many ms of the navigation.
AIM_MS = 1000.0
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


def browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (Debian's chromium package)"
    return None


def ui_chart(workdir: Path, sizes: Sizes) -> None:
    missing = browser_missing()
    if missing:
        raise SystemExit(f"ui_chart: {missing}")
    from playwright.sync_api import sync_playwright

    ui = ui_sizes()
    prepared = prepare(workdir, sizes, ui)
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
                server = start("hone", workdir, prepared)
                settle(server)
                client = Client(server.port)
                try:
                    url = f"http://127.0.0.1:{server.port}/#/runs/{run_id}"
                    these = [_load(browser, url, run_id, points) for _ in range(ui.loads)]
                    served = [client.send(metric) for _ in range(ui.metric_requests)]
                    processes = server_processes(server)
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
            "aims": {"chart_drawn_ms": AIM_MS},
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
            "passed": {"chart_drawn_ms": drawn["median"] < AIM_MS},
        }
    )
