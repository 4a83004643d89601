"""Table rows for the HTTP serving benchmark (bench_serve.py). A part whose fields are not
the ones expected is printed raw rather than stopping the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from report import Row, spread_text, verdict

_NAMES = {
    "hone_norecord": "hone --no-record",
    "bare": "bare FastAPI (constant answer)",
    "mlflow": "mlflow models serve",
}


def serve_rows(serve: dict[str, Any]) -> list[Row]:
    parts: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
        "serve_http": _http,
        "serve_memory": _memory,
    }
    rows: list[Row] = []
    for name, result in serve.items():
        try:
            rows += parts[name](result)
        except (KeyError, TypeError, ValueError):
            rows.append((f"{name} (raw)", json.dumps(result)[:200], "", "", "", ""))
    return rows


def _rps(side: dict[str, Any], c: int) -> str:
    return (
        f"{spread_text(side[f'c{c}_rps'])} req/s, p50 {spread_text(side[f'c{c}_p50_ms'], '.2f')} "
        f"/ p99 {spread_text(side[f'c{c}_p99_ms'], '.1f')} ms"
    )


def _at_least(aim: float) -> Callable[[float], bool]:
    return lambda v: v >= aim


def _http(t: dict[str, Any]) -> list[Row]:
    sides, ratios, aims = t["sides"], t["ratios"], t["aims"]
    hone = sides["hone"]
    rows: list[Row] = []
    for c in (1, 16):
        rows.append(
            (
                f"13 hone serve over HTTP, {c} connection{'s' * (c > 1)} (wrk, one row a request)",
                _rps(hone, c),
                "",
                "",
                "",
                "",
            )
        )
        for side in ("hone_norecord", "bare", "mlflow"):
            if side not in sides:
                continue
            key = {"hone_norecord": "record_vs_norecord", "bare": "vs_bare", "mlflow": "vs_mlflow"}
            name = f"{key[side]}_c{c}"
            aim = aims.get(name)
            rows.append(
                (
                    f"  against {_NAMES[side]}",
                    "",
                    _rps(sides[side], c),
                    spread_text(ratios[name], ".2f", "x"),
                    f">= {aim:.2f}x" if aim else "",
                    verdict(ratios[name], _at_least(aim)) if aim else "",
                )
            )
        if "mlflow" in sides:
            rows.append(
                (
                    "  p99 against mlflow models serve (lower is better)",
                    "",
                    "",
                    spread_text(ratios[f"p99_vs_mlflow_c{c}"], ".2f", "x"),
                    "< 1x" if c == 16 else "",
                    verdict(ratios[f"p99_vs_mlflow_c{c}"], lambda v: v < 1) if c == 16 else "",
                )
            )
    peaks = " / ".join(f"{spread_text(sides[s]['peak_rss_mib'])} {s}" for s in sides if s != "hone")
    rows += [
        ("  peak RSS of the server, MiB", spread_text(hone["peak_rss_mib"]), peaks, "", "", ""),
        (
            "  the in-process onnxruntime session, batch 1 (for scale), predictions/s",
            spread_text(t["session_predictions_per_s"]),
            "",
            "",
            "",
            "",
        ),
    ]
    return rows


def _memory(t: dict[str, Any]) -> list[Row]:
    return [
        (
            f"13 one server recording {t['recorded']:,.0f} predictions: peak RSS, MiB "
            "(after the first 5 s, at the end)",
            f"{t['peak_rss_mib']:,.0f} ({t['rss_after_first_5s_mib']:,.0f}, "
            f"{t['rss_at_end_mib']:,.0f})",
            "",
            "",
            "bounded",
            "",
        ),
        (
            "  stored after SIGTERM / recorded",
            f"{t['stored_after_stop']:,} / {t['recorded']:,.0f}",
            "",
            "",
            "all",
            "PASS" if t["all_stored"] else "MISS",
        ),
    ]
