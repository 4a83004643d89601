"""A registered version measured on labeled rows through its exported graph (what is
served is what is measured): accuracy, per-class precision/recall/F1, a confusion matrix
and log loss for a classifier; MSE, RMSE, MAE and R² for regression."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hone.data.api import get as get_dataset
from hone.data.dataset import DatasetVersion
from hone.errors import ValidationError
from hone.export.predictor import Predictor
from hone.models.loading import load_version
from hone.models.workspace import WorkspaceLike, opened
from hone.registry import get_version, parse_model_ref

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "Evaluation",
    "Rows",
    "check_fits",
    "evaluate",
    "evaluate_predictor",
    "labeled_rows",
    "parse_data_ref",
    "score",
]

#: Each metric and the direction that is better.
CLASSIFICATION = {
    "accuracy": "max",
    "macro_precision": "max",
    "macro_recall": "max",
    "macro_f1": "max",
    "log_loss": "min",
}
REGRESSION = {"mse": "min", "rmse": "min", "mae": "min", "r2": "max"}
_BATCH = 4096


@dataclass(frozen=True)
class Evaluation:
    model: str
    data: str
    split: str | None
    rows: int
    metrics: dict[str, float]
    classes: list[Any] | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: list[list[int]] | None = None  # rows: true class; columns: predicted
    unknown_labels: int = 0  # rows whose label the model was never trained on

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": self.data,
            "split": self.split,
            "rows": self.rows,
            "metrics": self.metrics,
            "classes": self.classes,
            "per_class": self.per_class,
            "confusion": self.confusion,
            "unknown_labels": self.unknown_labels,
        }


def parse_data_ref(text: str) -> tuple[str, str | None]:
    """``NAME@V[:split]`` → (NAME@V, split or None)."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("--on: give the evaluation data as NAME@VERSION[:SPLIT]")
    ref, sep, split = text.strip().partition(":")
    if sep and not split:
        raise ValidationError(f"--on {text!r}: nothing after ':' (give a split, e.g. :test)")
    return ref, (split or None)


def default_split(data: DatasetVersion, split: object) -> str | None:
    """The split asked for (checked), else ``test`` when the version has one, else None
    (every row)."""
    if split is None:
        return "test" if "test" in data.splits else None
    if not isinstance(split, str):
        raise ValidationError(f"split must be a split name, got {type(split).__name__}")
    if split not in data.splits:
        have = ", ".join(sorted(data.splits))
        raise ValidationError(f"{data.ref} has no split {split!r}; it has {have}")
    return split


def evaluate(
    ref: str,
    data: str | DatasetVersion,
    split: str | None = None,
    *,
    workspace: WorkspaceLike = None,
) -> Evaluation:
    """``ref`` evaluated on ``data``'s ``split`` (None: its test split if it has one, else
    every row)."""
    ws = opened(workspace)
    version = get_version(ws.db, parse_model_ref(ref))
    predictor = load_version(version, ws.db, ws.blobs)
    dataset = (
        data if isinstance(data, DatasetVersion) else get_dataset(data, workspace=ws.workspace)
    )
    return evaluate_predictor(predictor, dataset, default_split(dataset, split))


@dataclass(frozen=True)
class Rows:
    """A split's raw features and labels, read once for every model evaluated on them."""

    data: DatasetVersion
    split: str | None
    x: np.ndarray
    y: np.ndarray


def evaluate_predictor(predictor: Predictor, data: DatasetVersion, split: str | None) -> Evaluation:
    check_fits(predictor, data)
    return score(predictor, labeled_rows(data, split))


def check_fits(predictor: Predictor, data: DatasetVersion) -> None:
    """``data`` is what ``predictor`` can be evaluated on (shape, feature names, dtype,
    labels of its kind), checked from the manifest before any row is read."""
    signature = predictor.signature
    manifest = data.manifest
    if tuple(manifest.features.shape) != signature.shape:
        raise ValidationError(
            f"{predictor.ref} takes samples of shape {signature.shape}; {data.ref} has "
            f"{tuple(manifest.features.shape)}: not data it can be evaluated on"
        )
    if manifest.label is None:
        raise ValidationError(f"{data.ref} has no labels: nothing to evaluate against")
    names = tuple(manifest.feature_names)
    if signature.feature_names and names != signature.feature_names:
        differ = next(
            (
                i
                for i, (a, b) in enumerate(zip(names, signature.feature_names, strict=False))
                if a != b
            ),
            0,
        )
        raise ValidationError(
            f"{data.ref}'s features are not {predictor.ref}'s: feature {differ} is "
            f"{names[differ]!r} there, {signature.feature_names[differ]!r} in the model "
            "(same shape, other columns or another order)"
        )
    regression = signature.classes is None
    if regression and np.dtype(manifest.label.dtype).kind not in "biuf":
        raise ValidationError(
            f"{predictor.ref} predicts numbers; {data.ref}'s labels are {manifest.label.dtype}"
        )
    dtype = np.dtype(manifest.features.dtype)
    wanted = np.dtype(signature.dtype)
    if dtype != wanted and not (
        np.can_cast(dtype, wanted, "same_kind") or (dtype.kind in "biu" and wanted.kind == "f")
    ):
        raise ValidationError(
            f"{data.ref}'s features are {dtype}; {predictor.ref} takes {wanted} "
            "(they do not convert without changing values): not data it can be evaluated on"
        )


def labeled_rows(data: DatasetVersion, split: str | None) -> Rows:
    """The split's rows (every row when None), refused when empty or not finite."""
    x, y = data.to_numpy(split, raw=True)
    if y is None:
        raise ValidationError(f"{data.ref} has no labels: nothing to evaluate against")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        rows = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        shown = ", ".join(map(str, rows[:5])) + (" ..." if len(rows) > 5 else "")
        where = f"{data.ref}:{split}" if split else data.ref
        raise ValidationError(
            f"{where} has NaN or infinite features in {len(rows)} row(s) ({shown}, counted "
            f"within {'the split' if split else 'the version'}): they cannot be evaluated"
        )
    if len(x) == 0:
        raise ValidationError(f"{data.ref}{':' + split if split else ''} has no rows")
    return Rows(data, split, x, y)


def score(predictor: Predictor, rows: Rows) -> Evaluation:
    """``predictor``'s metrics on ``rows`` (checked with ``check_fits`` first)."""
    signature, x, y = predictor.signature, rows.x, rows.y
    outputs = [predictor.predict(x[i : i + _BATCH]) for i in range(0, len(x), _BATCH)]
    base: dict[str, Any] = {"model": predictor.ref, "data": rows.data.ref, "split": rows.split}
    base["rows"] = len(x)
    if signature.classes is None:
        values = np.concatenate([o.labels for o in outputs]).astype(np.float64)
        return Evaluation(**base, metrics=_regression(values, np.asarray(y, dtype=np.float64)))
    probabilities = np.concatenate(
        [o.probabilities for o in outputs if o.probabilities is not None]
    )
    return _classification(base, list(signature.classes), probabilities, y)


def _regression(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    error = predicted - truth
    mse = float(np.mean(error**2))
    spread = float(np.sum((truth - truth.mean()) ** 2))
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else float("nan"),
    }


def _class_indices(classes: list[Any], y: np.ndarray) -> np.ndarray:
    """Each label's index among the model's classes; -1 for a label it never saw."""
    index = {_key(c): i for i, c in enumerate(classes)}
    values, inverse = np.unique(np.asarray(y), return_inverse=True)
    mapped = np.array([index.get(_key(v), -1) for v in values], dtype=np.int64)
    return mapped[inverse.reshape(-1)]


def _key(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _classification(
    base: dict[str, Any], classes: list[Any], probabilities: np.ndarray, y: np.ndarray
) -> Evaluation:
    k = len(classes)
    truth = _class_indices(classes, y)
    if len(truth) and not (truth >= 0).any():
        shown = ", ".join(map(str, classes[:6])) + (" ..." if len(classes) > 6 else "")
        raise ValidationError(
            f"none of {base['data']}'s labels is a class of {base['model']} ({shown}): "
            "not data it can be evaluated on"
        )
    predicted = probabilities.argmax(axis=1)
    known = truth >= 0
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (truth[known], predicted[known]), 1)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    called = confusion.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(called > 0, hits / called, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0  # macro averages over the classes these rows have
    chosen = probabilities[np.flatnonzero(known), truth[known]]
    log_loss = float(-np.mean(np.log(np.clip(chosen, 1e-15, 1.0)))) if known.any() else math.nan
    metrics = {
        "accuracy": float(hits.sum() / len(truth)),
        "macro_precision": float(precision[present].mean()) if present.any() else math.nan,
        "macro_recall": float(recall[present].mean()) if present.any() else math.nan,
        "macro_f1": float(f1[present].mean()) if present.any() else math.nan,
        "log_loss": log_loss,
    }
    per_class = {
        str(c): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    }
    return Evaluation(
        **base,
        metrics=metrics,
        classes=classes,
        per_class=per_class,
        confusion=confusion.tolist(),
        unknown_labels=int((~known).sum()),
    )
