"""Every export checked against the eager model on held-out rows before it is kept: the
largest absolute difference of any output (probabilities, or regression values), and for
a classifier that every label agrees wherever the top two classes are not a near tie."""

from __future__ import annotations

from typing import Any

import numpy as np

from hone.errors import HoneError
from hone.export.build import Built
from hone.export.failures import ExportError, explain
from hone.export.formats import Exported, runner
from hone.export.quiet import quiet
from hone.export.served import reference

__all__ = ["TOLERANCE", "verify"]

#: The largest absolute difference accepted between an export and the eager model. Float32
#: arithmetic in another order (onnxruntime's kernels) differs by ~1e-7 on probabilities.
TOLERANCE = 1e-4


def verify(
    built: Built, exported: Exported, raw: np.ndarray, split: str, tolerance: float = TOLERANCE
) -> dict[str, Any]:
    ref = built.ref
    expected = reference(built.network, raw, built.transforms, built.classification)
    try:
        with quiet():
            got = runner(exported, built)(raw)
    except HoneError:
        raise
    except (Exception, SystemExit) as exc:
        raise explain(exc, exported.format, ref) from exc
    names = ["probabilities", "label"] if built.classification else ["prediction"]
    if len(got) != len(expected):
        raise ExportError(
            f"{exported.format} export of {ref} gives {len(got)} outputs; the eager model "
            f"{len(expected)} ({', '.join(names)})"
        )
    worst = 0.0
    for name, a, b in zip(names, got, expected, strict=True):
        if name == "label":
            continue
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise ExportError(
                f"{exported.format} export of {ref}: output {name} has shape {a.shape} on "
                f"{len(raw)} rows; the eager model's is {b.shape}"
            )
        if not np.isfinite(a).all() and not (np.isnan(a) == np.isnan(b)).all():
            raise ExportError(f"{exported.format} export of {ref}: {name} is not finite")
        worst = max(worst, float(np.nanmax(np.abs(a.astype(np.float64) - b)) if a.size else 0.0))
    if worst > tolerance:
        raise ExportError(
            f"{exported.format} export of {ref} differs from the eager model by up to {worst:.3g} "
            f"on {len(raw)} {split} rows (at most {tolerance:g} is accepted): not kept"
        )
    agree = len(raw)
    if built.classification:
        labels, eager_labels, probabilities = got[1], expected[1], expected[0]
        tie = np.zeros(len(raw), dtype=bool)  # one class: never a tie
        if probabilities.shape[-1] > 1:
            top2 = np.sort(probabilities, axis=-1)[:, -2:]
            tie = top2[:, 1] - top2[:, 0] <= 2 * tolerance
        wrong = (np.asarray(labels) != eager_labels) & ~tie
        if wrong.any():
            raise ExportError(
                f"{exported.format} export of {ref} predicts another class than the eager "
                f"model on {int(wrong.sum())} of {len(raw)} {split} rows: not kept"
            )
        agree = int((np.asarray(labels) == eager_labels).sum())
    return {
        "max_abs_diff": worst,
        "tolerance": tolerance,
        "rows": len(raw),
        "split": split,
        "labels_agree": agree if built.classification else None,
    }
