"""The serving benchmark's sides (bench_models.py): how each one loads the model and
predicts, what its loading costs (imports apart), and the timing of calls: per call over
many, and hone's predict paired with its own session's run in one process."""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from workloads import option

MODEL = "digits"
THREADS = 1


class Served:
    """A side, loaded: how it predicts, what its labels are, what it took to get there."""

    def __init__(
        self,
        predict: Callable[[Any], Any],
        labels: Callable[[Any], Any],
        *,
        import_s: float,
        load_s: float,
        threads: int,
        values: bool = False,
        context: Callable[[], Any] | None = None,
        shapes: dict[str, Callable[[Any], Any]] | None = None,
        bare: Callable[[Any], Any] | None = None,
    ) -> None:
        self.predict, self.labels = predict, labels
        self.import_s, self.load_s, self.threads = import_s, load_s, threads
        self.values = values  # labels in the dataset's values (hone), not class indices
        self.context = context or nullcontext
        self.shapes = shapes  # the input types a side takes (MLflow), by name
        self.bare = bare  # hone: its own session's run, for the paired measurement


def hone_side(workdir: Path, prepared: dict[str, Any], first: Any) -> Served:
    started = time.perf_counter()
    import onnxruntime  # noqa: F401  (hone.models.load imports it: counted as an import)

    import hone.models
    import hone.models.loading

    imported = time.perf_counter()
    predictor = hone.models.load(prepared["ref"], workspace=prepared["ws"], threads=THREADS)
    predictor.predict(first)
    loaded = time.perf_counter()
    return Served(
        predictor.predict,
        lambda x: predictor.predict(x).labels,
        import_s=imported - started,
        load_s=loaded - imported,
        threads=predictor.session.get_session_options().intra_op_num_threads,
        values=True,
        bare=lambda x: predictor.session.run(None, {"input": x}),
    )


def bare_side(workdir: Path, prepared: dict[str, Any], first: Any) -> Served:
    started = time.perf_counter()
    import onnxruntime as ort

    imported = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    session = ort.InferenceSession(prepared["onnx"], options, providers=["CPUExecutionProvider"])
    session.run(None, {"input": first})
    loaded = time.perf_counter()

    def predict(x: Any) -> Any:
        return session.run(None, {"input": x})

    return Served(
        predict,
        lambda x: predict(x)[1],
        import_s=imported - started,
        load_s=loaded - imported,
        threads=session.get_session_options().intra_op_num_threads,
    )


def eager_side(workdir: Path, prepared: dict[str, Any], first: Any) -> Served:
    started = time.perf_counter()
    import torch

    import hone.data
    import hone.models
    import hone.models.manage
    from hone.blobs import open_blob_store
    from hone.config import Workspace
    from hone.export.build import build
    from hone.export.formats import served

    torch.set_num_threads(THREADS)
    imported = time.perf_counter()
    ws = Workspace.discover(prepared["ws"])
    version = hone.models.get(prepared["ref"], workspace=ws)
    data = hone.data.get(str(version.body["data"]["ref"]), workspace=ws)
    built = build(version.ref, version.body, version.weights, data, open_blob_store(ws.blob_uri))
    module = served(built)
    with torch.inference_mode():
        module(torch.from_numpy(first))
    loaded = time.perf_counter()
    from_numpy = torch.from_numpy

    def predict(x: Any) -> Any:
        return module(from_numpy(x))

    def labels(x: Any) -> Any:
        return predict(x)[1].numpy()

    return Served(
        predict,
        labels,
        import_s=imported - started,
        load_s=loaded - imported,
        threads=torch.get_num_threads(),
        context=torch.inference_mode,
    )


def mlflow_side(workdir: Path, prepared: dict[str, Any], first: Any) -> Served:
    import logging
    import warnings

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    import mlflow
    import mlflow.onnx
    import mlflow.pyfunc
    import onnxruntime  # noqa: F401
    import pandas as pd

    imported = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow' / 'mlflow.db'}")
    into = workdir / "mlflow-loads" / f"{option('round', '0')}-{os.getpid()}"
    into.mkdir(parents=True)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/1", dst_path=str(into))
    model.predict({"input": first})
    loaded = time.perf_counter()
    shapes: dict[str, Callable[[Any], Any]] = {
        "ndarray": lambda x: x,
        "dict": lambda x: {"input": x},
        "DataFrame": lambda x: pd.DataFrame({"input": list(x)}),
    }

    def labels(x: Any) -> Any:
        out = model.predict({"input": x})["label"]
        return out.to_numpy() if hasattr(out, "to_numpy") else out

    return Served(
        model.predict,
        labels,
        import_s=imported - started,
        load_s=loaded - imported,
        threads=model.get_raw_model().get_session_options().intra_op_num_threads,
        shapes=shapes,
    )


def fastest(
    predict: Callable[[Any], Any],
    shapes: dict[str, Callable[[Any], Any]],
    inputs: Sequence[Any],
) -> tuple[str, list[Any], dict[str, float | None]]:
    """The input type ``predict`` runs fastest on (median of 200 calls after 20), those
    inputs built, and every type's median in microseconds (None: refused)."""
    probe: dict[str, float | None] = {}
    built: dict[str, list[Any]] = {}
    for name, shape in shapes.items():
        built[name] = [shape(x) for x in inputs]
        try:
            probe[name] = median(timed(predict, built[name], 200, 20)) / 1000
        except Exception:  # a type this model does not take
            probe[name] = None
    taken = {name: us for name, us in probe.items() if us is not None}
    if not taken:
        raise SystemExit(f"no input type was taken: {', '.join(shapes)}")
    best = min(taken, key=lambda name: taken[name])
    return best, built[best], probe


def timed(fn: Callable[[Any], Any], inputs: Sequence[Any], count: int, warmup: int) -> list[int]:
    """Nanoseconds of each of ``count`` calls (after ``warmup``), the inputs in turn."""
    n = len(inputs)
    for i in range(warmup):
        fn(inputs[i % n])
    gc.collect()
    gc.disable()
    clock = time.perf_counter_ns
    times = [0] * count
    try:
        for i in range(count):
            x = inputs[i % n]
            start = clock()
            fn(x)
            times[i] = clock() - start
    finally:
        gc.enable()
    return times


def paired(
    mine: Callable[[Any], Any], bare: Callable[[Any], Any], inputs: Sequence[Any], count: int
) -> dict[str, float]:
    """hone's predict and a bare run of the very same session in one process, in
    alternating blocks (the first side alternating too): the overhead of the call itself,
    free of what differs between processes (where their memory lies, which core they get).
    Per block the median call; the figure is the median of the blocks' ratios."""
    blocks = 10
    per = max(50, count // blocks)
    ratios: list[float] = []
    mine_us: list[float] = []
    bare_us: list[float] = []
    for block in range(blocks):
        order = [(mine, mine_us), (bare, bare_us)]
        if block % 2:
            order.reverse()
        medians: dict[int, float] = {}
        for fn, into in order:
            value = median(timed(fn, inputs, per, per // 5)) / 1000
            into.append(value)
            medians[id(fn)] = value
        ratios.append(medians[id(mine)] / medians[id(bare)])
    return {
        "ratio": float(statistics.median(ratios)),
        "hone_us": float(statistics.median(mine_us)),
        "bare_us": float(statistics.median(bare_us)),
        "overhead_us": float(statistics.median(mine_us) - statistics.median(bare_us)),
    }


def median(values: list[int]) -> float:
    return float(statistics.median(values))


def p99(values: list[int]) -> float:
    """The nearest-rank 99th percentile."""
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)])


#: How each side loads the model: hone's predictor, a bare session, eager PyTorch, MLflow.
LOADERS: dict[str, Callable[[Path, dict[str, Any], Any], Served]] = {
    "hone": hone_side,
    "bare": bare_side,
    "eager": eager_side,
    "mlflow": mlflow_side,
}
