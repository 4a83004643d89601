"""Answered predictions as journal records, and as the store's rows.

A served batch becomes one journal frame (the tracking journal's JSON event, kind
``answered``): the rows' request ids, output values and latencies as lists, their inputs and
class probabilities as base64 of the raw arrays. A batch whose inputs are large is split over
frames of about ``FRAME_INPUT_BYTES``; one input larger than that gets a frame of its own.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from hone.errors import ValidationError
from hone.ids import sha256_bytes
from hone.tracking.records import MAX_FRAME_BYTES, Event, encode_event

__all__ = [
    "COLUMNS",
    "INLINE_INPUT_BYTES",
    "KIND",
    "Answered",
    "StoredRows",
    "decode_answered",
    "encode_answered",
    "json_value",
    "stored_rows",
]

KIND = "answered"
#: An input up to this many bytes is stored in its prediction's row; a larger one as a blob.
INLINE_INPUT_BYTES = 16 << 10
#: Inputs per journal frame, in raw bytes (base64 makes them 4/3 larger).
FRAME_INPUT_BYTES = 512 << 10


@dataclass(frozen=True, slots=True)
class Answered:
    """One batch the model answered: ``rows`` instances of ``inputs`` (raw, in the
    signature's dtype), one output value each, probabilities (rows, classes) or None."""

    model: str
    version: int
    at: float  # when the batch was answered (epoch seconds)
    request_ids: Sequence[str]
    inputs: np.ndarray
    outputs: Sequence[Any]  # JSON values: labels in the dataset's terms, or numbers
    probabilities: np.ndarray | None
    latency_ms: Sequence[float]

    @property
    def rows(self) -> int:
        return len(self.request_ids)


@dataclass
class StoredRows:
    """Predictions as the store's ``predictions`` table holds them: ``rows`` are tuples in
    ``COLUMNS`` order; ``blobs`` are inputs still to be put in the blob store (their rows
    hold their digests)."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)

    def extend(self, other: StoredRows) -> None:
        self.rows += other.rows
        self.blobs += other.blobs

    def __len__(self) -> int:
        return len(self.rows)


COLUMNS = (
    "request_id",
    "model",
    "version",
    "at",
    "input",
    "input_digest",
    "prediction",
    "probabilities",
    "latency_ms",
)


def json_value(value: Any) -> str:
    """The canonical JSON text of a label or output value (NumPy scalars as Python's)."""
    kind = type(value)
    if kind is int:  # the common case (class indices), a tenth of json.dumps's cost
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{value!r} is not a value a label or prediction can hold")
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def encode_answered(batch: Answered) -> list[bytes]:
    """The journal frames that record ``batch`` (usually one)."""
    per_row = batch.inputs[0].nbytes if batch.rows else 0
    step = max(1, FRAME_INPUT_BYTES // max(per_row, 1))
    frames = []
    for start in range(0, batch.rows, step):
        end = min(batch.rows, start + step)
        probabilities = batch.probabilities
        data = {
            "model": batch.model,
            "version": batch.version,
            "at": batch.at,
            "dtype": batch.inputs.dtype.str,
            "shape": list(batch.inputs.shape[1:]),
            "ids": list(batch.request_ids[start:end]),
            "out": list(batch.outputs[start:end]),
            "ms": list(batch.latency_ms[start:end]),
            "x": _b64(batch.inputs[start:end]),
            "p": None if probabilities is None else _b64(probabilities[start:end]),
            "k": None if probabilities is None else int(probabilities.shape[1]),
        }
        frames.append(encode_event(KIND, data, limit=MAX_FRAME_BYTES, dumps=_dumps))
    return frames


def _orjson() -> Callable[[dict[str, Any]], bytes] | None:
    """orjson's dumps where installed (with hone serve): a quarter of the json module's
    cost for a batch's record, paid on the request path."""
    try:
        import orjson
    except ImportError:
        return None
    dumps: Callable[[dict[str, Any]], bytes] = orjson.dumps
    return dumps


_dumps = _orjson()


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def decode_answered(event: Event) -> Answered:
    """The batch one ``answered`` record holds. Raises ValueError (and friends) on a record
    that does not hold together; the caller sets it aside."""
    data = event.data
    ids, outputs, latencies = list(data["ids"]), list(data["out"]), list(data["ms"])
    dtype = np.dtype(data["dtype"])
    if dtype.kind not in "biuf":
        raise ValueError(f"inputs of dtype {dtype} are not numbers")
    shape = tuple(int(n) for n in data["shape"])
    inputs = np.frombuffer(base64.b64decode(data["x"], validate=True), dtype)
    inputs = inputs.reshape((len(ids), *shape))
    probabilities = None
    if data["p"] is not None:
        raw = np.frombuffer(base64.b64decode(data["p"], validate=True), np.float32)
        probabilities = raw.reshape(len(ids), int(data["k"]))
    if not len(ids) == len(outputs) == len(latencies):
        raise ValueError("the record's lists do not have one entry per row")
    return Answered(
        model=str(data["model"]),
        version=int(data["version"]),
        at=float(data["at"]),
        request_ids=[str(i) for i in ids],
        inputs=inputs,
        outputs=outputs,
        probabilities=probabilities,
        latency_ms=[float(ms) for ms in latencies],
    )


def stored_rows(batch: Answered) -> StoredRows:
    """The store's rows for ``batch`` (from memory, or as ``decode_answered`` read it back
    from the journal: the same rows either way). Built column by column and zipped: a
    server's flusher pays this for every prediction, holding the GIL."""
    n = batch.rows
    if not n:
        return StoredRows()
    inputs = np.ascontiguousarray(batch.inputs)
    width = inputs[0].nbytes
    raw = inputs.tobytes()  # one copy, sliced per row
    xs = [raw[i * width : (i + 1) * width] for i in range(n)]
    probabilities: list[bytes | None] = [None] * n
    if batch.probabilities is not None:
        p = np.ascontiguousarray(batch.probabilities, np.float32)
        p_raw, p_width = p.tobytes(), p.shape[1] * 4
        probabilities = [p_raw[i * p_width : (i + 1) * p_width] for i in range(n)]
    outputs = list(map(json_value, batch.outputs))
    latency = np.round(np.asarray(batch.latency_ms, np.float64), 4).tolist()
    big = width > INLINE_INPUT_BYTES
    inline: list[bytes | None] = [None] * n if big else list(xs)
    digests: list[str | None] = [sha256_bytes(x) for x in xs] if big else [None] * n
    rows = list(
        zip(
            batch.request_ids,
            repeat(batch.model, n),
            repeat(batch.version, n),
            repeat(batch.at, n),
            inline,
            digests,
            outputs,
            probabilities,
            latency,
            strict=True,
        )
    )
    return StoredRows(rows, xs if big else [])
