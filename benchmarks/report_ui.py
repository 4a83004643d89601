"""Table rows for the web UI benchmark (bench_ui.py). A part whose fields are not the ones
expected is printed raw rather than stopping the report.

    python benchmarks/report_ui.py benchmarks/results/DATE-COMMIT.json [--markdown]

prints the ``ui`` step of a results file alone (render.py prints it with the others).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report import Row, spread_text, verdict


def ui_rows(ui: dict[str, Any]) -> list[Row]:
    parts: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
        "ui_runs": _runs,
        "ui_chart": _chart,
    }
    rows: list[Row] = []
    for name, result in ui.items():
        try:
            rows += parts[name](result)
        except (KeyError, TypeError, ValueError):
            rows.append((f"{name} (raw)", json.dumps(result)[:200], "", "", "", ""))
    return rows


def _ms(s: dict[str, Any] | None) -> str:
    if not s:
        return "-"
    fmt = ".1f" if s["median"] < 100 else ",.0f"
    return spread_text(s, fmt)


def _runs(t: dict[str, Any]) -> list[Row]:
    sides, ratios, aims = t["sides"], t.get("ratios", {}), t["aims"]
    hone, mlflow = sides["hone"], sides.get("mlflow", {})

    def pair(kind: str, name: str, aim_name: str | None = None) -> Row:
        ratio = ratios.get(f"{kind}_vs_mlflow")
        aim: float = aims.get(aim_name, 0.0) if aim_name else 0.0
        return (
            name,
            _ms(hone[f"{kind}_ms"]),
            _ms(mlflow.get(f"{kind}_ms")),
            spread_text(ratio, ".1f", "x") if ratio else "",
            f">= {aim:.0f}x" if aim else "",
            verdict(ratio, lambda v: v >= aim) if aim and ratio else "",
        )

    kb = " / ".join(f"{hone[f'{k}_bytes']['median'] / 1000:,.0f}" for k in ("first", "filtered"))
    mlflow_kb = (
        " / ".join(f"{mlflow[f'{k}_bytes']['median'] / 1000:,.0f}" for k in ("first", "filtered"))
        if mlflow
        else ""
    )
    rows: list[Row] = [
        pair(
            "first",
            f"14 runs page over {t['runs']:,} runs: the first {t['page']}, newest first, "
            "warm server, ms",
            "first_vs_mlflow",
        ),
        pair(
            "filtered",
            f"  filtered page ({t['filter']}: {t['matches']:,} matches), warm, ms",
            "filtered_vs_mlflow",
        ),
        pair("cold_first", "  first page, the first request after the server started, ms"),
        pair("cold_filtered", "  filtered page, the next request, ms"),
        (
            "  hone's count of matches, asked beside the rows: all runs / filtered, ms",
            f"{_ms(hone.get('first_count_ms'))} / {_ms(hone.get('filtered_count_ms'))}",
            "",
            "",
            "",
            "",
        ),
        (
            "  hone's rows and count in one answer (the API's default): first / filtered, ms",
            f"{_ms(hone.get('first_total_ms'))} / {_ms(hone.get('filtered_total_ms'))}",
            "",
            "",
            "",
            "",
        ),
        (
            "  hone's own UI page (50 runs), ms",
            _ms(hone.get("page50_ms")),
            "",
            "",
            "",
            "",
        ),
        ("  answer size, kB: first / filtered page", kb, mlflow_kb, "", "", ""),
        (
            "  server start: until its health check answers (then until idle), s",
            f"{hone['ready_s']['median']:.1f} ({hone['settle_s']['median']:.1f})",
            f"{mlflow['ready_s']['median']:.1f} ({mlflow['settle_s']['median']:.1f})"
            if mlflow
            else "",
            "",
            "",
            "",
        ),
        (
            "  peak RSS of the server, MiB: the serving process (all its processes)",
            f"{spread_text(hone['serving_peak_rss_mib'])} ({hone['peak_rss_mib']['median']:,.0f})",
            f"{spread_text(mlflow['serving_peak_rss_mib'])} "
            f"({mlflow['peak_rss_mib']['median']:,.0f})"
            if mlflow
            else "",
            "",
            "",
            "",
        ),
    ]
    return rows


def _chart(t: dict[str, Any]) -> list[Row]:
    aim = t["aims"]["chart_drawn_ms"]
    loads = t["rounds"] * t["loads_per_round"]
    return [
        (
            f"14 run page with a {t['points']:,}-point chart: navigation to drawn, "
            f"Chromium, {loads} loads, ms",
            _ms(t["drawn_ms"]),
            "",
            "",
            f"< {aim:,.0f} ms",
            verdict(t["drawn_ms"], lambda v: v < aim),
        ),
        (
            "  first load after the server started, ms",
            _ms(t["first_load_drawn_ms"]),
            "",
            "",
            "",
            "",
        ),
        (
            "  in the page: metric requested at / first byte / last byte, ms",
            f"{_ms(t['metric_start_ms'])} / {_ms(t['metric_first_byte_ms'])} / "
            f"{_ms(t['metric_end_ms'])}",
            "",
            "",
            "",
            "",
        ),
        ("  after the last byte: parse and draw, ms", _ms(t["after_metric_ms"]), "", "", "", ""),
        (
            "  metric endpoint from a client, warm server: ms (MB)",
            f"{_ms(t['metric_server_ms'])} ({t['metric_bytes'] / 1e6:.1f})",
            "",
            "",
            "",
            "",
        ),
        ("  peak RSS of the server, MiB", spread_text(t["peak_rss_mib"]), "", "", "", ""),
    ]


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: report_ui.py RESULTS.json [--markdown]")
    from render import describe, print_markdown, print_table

    record = json.loads(Path(sys.argv[1]).read_text())
    ui = record["benchmarks"].get("ui")
    if ui is None:
        raise SystemExit(f"{sys.argv[1]} holds no ui step")
    print(describe(record))
    print()
    (print_markdown if "--markdown" in sys.argv else print_table)(ui_rows(ui))


if __name__ == "__main__":
    main()
