"""Table rows for the sample library's benchmarks (bench_data.py), against their own
baselines. That script's results may change shape while it grows: a part whose fields are
not the ones expected is printed raw rather than stopping the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from report import Row, spread_text


def data_rows(data: dict[str, Any]) -> list[Row]:
    parts: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
        "data_append": _append,
        "data_adapter": _adapter,
        "data_import": _import,
        "data_import_1m": _big_import,
        "data_import_10m": _big_import,
        "split_cache": _split_cache,
    }
    rows: list[Row] = []
    for name, result in data.items():
        try:
            rows += parts[name](result)
        except (KeyError, TypeError, ValueError):
            rows.append((f"{name} (raw)", json.dumps(result)[:200], "", "", "", ""))
    return rows


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _append(a: dict[str, Any]) -> list[Row]:
    return [
        (
            f"5 append 1% ({a['appended']:,} rows) to {a['rows']:,}: new bytes / version",
            f"{100 * a['bytes_ratio']:.2f}%",
            "",
            "",
            "<= 3%",
            _verdict(a["bytes_ratio"] <= 0.03),
        ),
        (
            "  append time / full import",
            f"{100 * a['time_ratio']:.2f}%",
            f"{a['append_s']:.2f} s / {a['import_s']:.2f} s",
            "",
            "<= 10%",
            _verdict(a["time_ratio"] <= 0.10),
        ),
    ]


def _adapter(t: dict[str, Any]) -> list[Row]:
    return [
        (
            f"6 loader over {t['rows']:,} x 64 float32, batch 256, samples/s",
            f"{t['loader_samples_per_s']:,.0f}",
            f"{t['numpy_batched_samples_per_s']:,.0f} (NumPy)",
            f"{100 * t['loader_ratio']:.0f}%",
            ">= 50%",
            _verdict(t["loader_ratio"] >= 0.5),
        ),
        (
            f"  DataLoader over ds.torch(), {t['per_sample_rows']:,} samples",
            f"{t['torch_dataset_samples_per_s']:,.0f}",
            f"{t['numpy_dataset_samples_per_s']:,.0f} (NumPy)",
            f"{100 * t['torch_dataset_ratio']:.0f}%",
            ">= 50%",
            _verdict(t["torch_dataset_ratio"] >= 0.5),
        ),
    ]


def _import(i: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for kind in ("csv", "parquet"):
        compared = i.get(kind)
        if isinstance(compared, dict):
            rows.append(
                (
                    f"7 import {i['rows']:,} rows x {i['columns']} from {kind}, rows/s",
                    spread_text(compared["hone"]["rows_per_s"]),
                    spread_text(compared["pandas"]["rows_per_s"]) + " (pandas)",
                    spread_text(compared.get("speed_ratio"), ".2f", "x"),
                    "",
                    "",
                )
            )
        else:
            rows.append(
                (
                    f"7 import {i['rows']:,} rows x {i['columns']} from {kind}, rows/s",
                    f"{i[f'hone_{kind}_rows_per_s']:,.0f}",
                    f"{i[f'pandas_{kind}_rows_per_s']:,.0f} (pandas)",
                    "",
                    "",
                    "",
                )
            )
    return rows


def _big_import(i: dict[str, Any]) -> list[Row]:
    """A large CSV import: rows/s and peak RSS, beside pandas where it ran (issue 12 aims:
    >= 0.8x pandas' rows/s, <= 0.5x its peak RSS)."""
    hone, pandas = i["hone"], i.get("pandas")
    speed, rss = i.get("speed_ratio"), i.get("rss_ratio")
    size = _size(i["source_bytes"]) if "source_bytes" in i else "?"
    return [
        (
            f"7 import {i['rows']:,} x {i['columns']} from CSV ({size}), rows/s",
            spread_text(hone["rows_per_s"]),
            spread_text(pandas["rows_per_s"]) + " (pandas)" if pandas else "",
            spread_text(speed, ".2f", "x"),
            ">= 0.8x" if speed else "",
            _verdict(speed["median"] >= 0.8) if speed else "",
        ),
        (
            "  peak RSS, MiB",
            spread_text(hone["peak_rss_mib"]),
            spread_text(pandas["peak_rss_mib"]) if pandas else "",
            spread_text(rss, ".2f", "x"),
            "<= 0.5x" if rss else "",
            _verdict(rss["median"] <= 0.5) if rss else "",
        ),
    ]


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


def _split_cache(c: dict[str, Any]) -> list[Row]:
    off, cold, warm = c["off"], c["cold"], c["warm"]
    shape = f"{c['rows']:,} x {c['features']}"
    return [
        (
            f"5 split cache, {c['processes']} ranks load {shape}: job's first batch, s (cold)",
            spread_text(cold["job_first_batch_s"], ".3f", " s"),
            spread_text(off["job_first_batch_s"], ".3f", " s") + " (off)",
            "",
            "",
            "",
        ),
        (
            "  first batch when the file is there (warm), s",
            spread_text(warm["job_first_batch_s"], ".3f", " s"),
            "",
            "",
            "",
            "",
        ),
        (
            "  private memory per process, MiB (cold / warm)",
            f"{cold['private_mib']['median']:.0f} / {warm['private_mib']['median']:.0f}",
            spread_text(off["private_mib"]) + " (off)",
            "",
            "",
            "",
        ),
        (
            "  processes that decoded the split (cold)",
            f"{cold['decoders_per_trial']['median']:.0f}",
            f"{off['decoders_per_trial']['median']:.0f} (off)",
            "",
            "",
            "",
        ),
    ]
