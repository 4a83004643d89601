"""A loaded model: an onnxruntime session over the exported graph (preprocessing inside)
and its signature. ``predict`` takes raw features, as the dataset holds them, and gives
labels in the dataset's own values and class probabilities. Nothing here imports PyTorch
or unpickles anything: the graph is protobuf, the signature JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from hone.errors import UserError, ValidationError

__all__ = ["Prediction", "Predictor", "Signature", "onnxruntime"]


def onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise UserError(
            "running an exported model needs onnxruntime, which is not installed: "
            "pip install 'hone[models]'"
        ) from None
    return onnxruntime


class Prediction(NamedTuple):
    """``labels``: one per row (the dataset's class values; for regression the predicted
    values); ``probabilities``: (rows, classes) in ``Predictor.classes`` order, None for
    regression."""

    labels: np.ndarray
    probabilities: np.ndarray | None


@dataclass(frozen=True)
class Signature:
    input: str
    dtype: str  # NumPy's name of the raw features' dtype
    shape: tuple[int, ...]  # one sample's; the batch dimension is dynamic
    outputs: tuple[str, ...]
    classes: tuple[Any, ...] | None  # None: regression
    feature_names: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Signature:
        (entry,) = body["inputs"]
        classes = body.get("classes")
        return cls(
            input=entry["name"],
            dtype=entry["dtype"],
            shape=tuple(int(n) for n in entry["shape"][1:]),
            outputs=tuple(o["name"] for o in body["outputs"]),
            classes=tuple(classes) if classes is not None else None,
            feature_names=tuple(body.get("feature_names") or ()),
        )

    def __str__(self) -> str:
        dims = ", ".join(["batch", *map(str, self.shape)])
        return f"{self.input}: {self.dtype}[{dims}]"


class Predictor:
    """``predict(x)`` for rows shaped ``(batch, *signature.shape)``."""

    def __init__(
        self, graph: bytes, signature: Signature, *, ref: str = "", threads: int | None = None
    ) -> None:
        ort = onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or not 0 < threads <= 1024:
                raise ValidationError(f"threads={threads!r}: give a number from 1 to 1024")
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own errors share no base class
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ValidationError(f"{ref}: onnxruntime cannot load its graph: {first}") from None
        self.signature, self.ref = signature, ref
        self._dtype = np.dtype(signature.dtype)
        self._shape = signature.shape
        self._ndim = len(signature.shape) + 1
        self._input = signature.input
        self._outputs = list(signature.outputs)
        self.classes = np.asarray(signature.classes) if signature.classes is not None else None
        self._floats = self._dtype.kind == "f"
        # Classes 0..K-1 (digits' labels) are their own indices: no lookup a call.
        self._indices = self.classes is not None and (
            self.classes.dtype.kind in "iu"
            and np.array_equal(self.classes, np.arange(len(self.classes)))
        )
        self._empty = (
            Prediction(np.zeros(0, np.float32), None)
            if self.classes is None
            else Prediction(self.classes[:0], np.zeros((0, len(self.classes)), np.float32))
        )

    def __repr__(self) -> str:
        return f"<Predictor {self.ref} {self.signature}>"

    def predict(self, x: Any) -> Prediction:
        return self.run_checked(self.check(x))

    def check(self, x: Any) -> np.ndarray:
        """``x`` as the graph takes it (converted where no value changes), or the
        ValidationError that says what is wrong with it."""
        arr: np.ndarray = x if type(x) is np.ndarray else self._array(x)
        if arr.dtype != self._dtype:
            arr = self._cast(arr)
        if arr.ndim != self._ndim or arr.shape[1:] != self._shape:
            self._wrong_shape(arr)
        if self._floats and not np.isfinite(arr).all():
            self._not_finite(arr)
        return arr

    def run_checked(self, x: np.ndarray) -> Prediction:
        """Predict for rows ``check`` has passed (a server checks each request, then runs
        them together)."""
        if not len(x):  # onnxruntime's ArgMax of no rows is shaped (0, classes)
            return self._empty
        outputs = self.session.run(self._outputs, {self._input: x})
        if self.classes is None:
            return Prediction(outputs[0], None)
        if self._indices:
            return Prediction(outputs[1], outputs[0])
        return Prediction(self.classes[outputs[1]], outputs[0])

    def _array(self, x: Any) -> np.ndarray:
        try:
            return np.asarray(x)
        except (ValueError, TypeError) as exc:  # ragged lists
            raise ValidationError(
                f"{self.ref}: predict takes an array of {self.signature}; "
                f"{type(x).__name__} does not make one ({exc})"
            ) from None

    def _cast(self, x: np.ndarray) -> np.ndarray:
        """Numbers of another kind are converted when no value changes meaning: floats to
        floats, integers to floats or to integers that hold them; never floats to
        integers, text, or objects."""
        want = self._dtype
        ok = x.dtype.kind in "biuf" and (
            np.can_cast(x.dtype, want, "same_kind") or (x.dtype.kind in "biu" and want.kind == "f")
        )
        if ok and want.kind in "iu" and x.size:
            info = np.iinfo(want)
            ok = bool(x.min() >= info.min and x.max() <= info.max)
        if not ok:
            raise ValidationError(
                f"{self.ref}: predict takes {self.signature}; got {x.dtype} values, which do "
                f"not convert to {want} without changing them"
            )
        return x.astype(want)

    def _not_finite(self, x: np.ndarray) -> None:
        rows = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        shown = ", ".join(map(str, rows[:5])) + (" ..." if len(rows) > 5 else "")
        raise ValidationError(
            f"{self.ref}: row(s) {shown} have NaN or infinite values; a prediction from them "
            "would mean nothing"
        )

    def _wrong_shape(self, x: np.ndarray) -> None:
        hint = ""
        if x.shape == self._shape:
            hint = " (one sample: give a batch of one, x[None])"
        elif x.ndim == 2 and x.shape[1] == int(np.prod(self._shape)) and self._ndim > 2:
            hint = f" (flat rows: reshape to (-1, {', '.join(map(str, self._shape))}))"
        raise ValidationError(
            f"{self.ref}: predict takes {self.signature}; got shape {tuple(x.shape)}{hint}"
        )
