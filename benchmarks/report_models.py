"""Table rows for the serving benchmark (bench_models.py). A part whose fields are not the
ones expected is printed raw rather than stopping the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from report import Row, spread_text, verdict

_OTHERS = {"eager": "eager PyTorch", "mlflow": "MLflow pyfunc"}


def models_rows(models: dict[str, Any]) -> list[Row]:
    parts: dict[str, Callable[[dict[str, Any]], list[Row]]] = {"models_predict": _predict}
    rows: list[Row] = []
    for name, result in models.items():
        try:
            rows += parts[name](result)
        except (KeyError, TypeError, ValueError):
            rows.append((f"{name} (raw)", json.dumps(result)[:200], "", "", "", ""))
    return rows


def _us(s: dict[str, Any]) -> str:
    return spread_text(s, ",.1f", " us")


def _predict(t: dict[str, Any]) -> list[Row]:
    sides, ratios, aims = t["sides"], t["ratios"], t["aims"]
    hone, bare = sides["hone"], sides["bare"]
    b1_aim, b64_aim = float(aims["b1_vs_bare"]), float(aims["b64_vs_bare"])
    rows: list[Row] = [
        (
            f"12 serving the digits CNN ({t['threads']} thread), batch 1: median latency, "
            "hone's predictor vs bare onnxruntime",
            _us(hone["b1_median_us"]),
            _us(bare["b1_median_us"]),
            spread_text(ratios["b1_vs_bare"], ".3f", "x"),
            f"<= {b1_aim:.2f}x",
            verdict(ratios["b1_vs_bare"], lambda v: v <= b1_aim),
        ),
        (
            "  batch 1: p99 latency",
            _us(hone["b1_p99_us"]),
            _us(bare["b1_p99_us"]),
            spread_text(ratios["b1_p99_vs_bare"], ".3f", "x"),
            "",
            "",
        ),
        (
            f"  batch {t['batch']}: median latency a batch",
            _us(hone["b64_median_us"]),
            _us(bare["b64_median_us"]),
            spread_text(ratios["b64_vs_bare"], ".3f", "x"),
            f"<= {b64_aim:.2f}x",
            verdict(ratios["b64_vs_bare"], lambda v: v <= b64_aim),
        ),
        (
            f"  batch {t['batch']}: samples/s (p99 a batch)",
            f"{spread_text(hone['b64_samples_per_s'])} ({_us(hone['b64_p99_us'])})",
            f"{spread_text(bare['b64_samples_per_s'])} ({_us(bare['b64_p99_us'])})",
            "",
            "",
            "",
        ),
    ]
    if "paired_b1_ratio" in hone:
        for batch, aim in (("b1", b1_aim), ("b64", b64_aim)):
            size = 1 if batch == "b1" else t["batch"]
            rows.append(
                (
                    f"  paired, one process (predict vs the same session's run, alternating "
                    f"blocks), batch {size}: median call (overhead)",
                    f"{_us(hone[f'paired_{batch}_hone_us'])} "
                    f"(+{spread_text(hone[f'paired_{batch}_overhead_us'], ',.1f', ' us')})",
                    _us(hone[f"paired_{batch}_bare_us"]),
                    spread_text(hone[f"paired_{batch}_ratio"], ".3f", "x"),
                    f"<= {aim:.2f}x",
                    verdict(hone[f"paired_{batch}_ratio"], _at_most(aim)),
                )
            )
    rows += [
        (
            "  load to first prediction, ms (imports apart, s)",
            f"{spread_text(hone['load_ms'], ',.1f')} ({spread_text(hone['import_s'], '.2f')})",
            f"{spread_text(bare['load_ms'], ',.1f')} ({spread_text(bare['import_s'], '.2f')})",
            "",
            "",
            "",
        ),
    ]
    for side, label in _OTHERS.items():
        if side not in sides:
            continue
        other = sides[side]
        note = ""
        if side == "mlflow":
            note = f" (input: {'/'.join(sorted(set(other['input_b1'] + other['input_b64'])))})"
        rows += [
            (
                f"  against {label}{note}: batch 1 median / p99",
                "",
                f"{_us(other['b1_median_us'])} / {_us(other['b1_p99_us'])}",
                spread_text(ratios[f"b1_vs_{side}"], ".3f", "x"),
                "",
                "",
            ),
            (
                f"  against {label}: batch {t['batch']} median a batch (samples/s)",
                "",
                f"{_us(other['b64_median_us'])} ({spread_text(other['b64_samples_per_s'])})",
                spread_text(ratios[f"b64_vs_{side}"], ".3f", "x"),
                "",
                "",
            ),
            (
                f"  against {label}: load to first prediction, ms (imports apart, s)",
                "",
                f"{spread_text(other['load_ms'], ',.1f')} "
                f"({spread_text(other['import_s'], '.2f')})",
                "",
                "",
                "",
            ),
        ]
    peaks = " / ".join(
        f"{spread_text(sides[side]['peak_rss_mib'])} {side}" for side in sides if side != "hone"
    )
    agree = min(float(s["labels_agree"]["min"]) for s in sides.values())
    rows += [
        (
            "  peak RSS of a trial process, MiB",
            spread_text(hone["peak_rss_mib"]),
            peaks,
            "",
            "",
            "",
        ),
        (
            f"  labels on the {t['test_rows']} test rows, as the bare session's "
            f"(test accuracy {t['test_accuracy']:.4f}, {t['epochs']} epochs)",
            f"{100 * float(hone['labels_agree']['min']):.1f}%",
            f"{100 * agree:.1f}% (every side)",
            "",
            "",
            "",
        ),
    ]
    return rows


def _at_most(aim: float) -> Callable[[float], bool]:
    return lambda value: value <= aim
