"""Serving benchmark; prints RESULT lines (run_all.py collects them).

    python benchmarks/bench_models.py WORKDIR [--quick] [--only=models_predict] [--pairs=N]
                                      [--mlflow-python=PATH]

``models_predict``: the digits CNN (builtin:cnn on the normalized digits, trained
``model_epochs`` epochs, registered with its ONNX export) served four ways, on the same raw
rows (the test split's 64 float64 pixels, preprocessing inside every side):

- ``hone``: ``hone.models.load(ref, threads=1)``, then ``Predictor.predict(x)`` (raw rows
  in; labels in the dataset's values and probabilities out).
- ``bare``: a bare ``onnxruntime.InferenceSession`` on the same ONNX file (the blob
  ``hone.models.load`` reads, written out once), ``sess.run(None, {"input": x})``: the
  ceiling.
- ``eager``: the same network in PyTorch with the same preprocessing (``hone.export``'s
  ``build`` + ``served``: what the ONNX graph was exported from),
  ``module(torch.from_numpy(x))`` under ``torch.inference_mode()``.
- ``mlflow`` (with ``--mlflow-python``, in .venv-mlflow): the same ONNX file logged once
  with ``mlflow.onnx.log_model`` (a tensor signature named after the graph's input;
  ``save_as_external_data=False``, so the stored file is byte for byte the same) and
  registered in a SQLite store, then ``mlflow.pyfunc.load_model("models:/digits/1")`` and
  ``.predict``. Its ONNX flavour takes a NumPy array, a dict of them, or a DataFrame; each
  trial probes the three (200 calls each) at both batch sizes and is timed with the
  fastest, which the results name.

Threads are fixed the same on every side: one intra-op thread (onnxruntime's
``intra_op_num_threads=1``: hone's ``threads=1``, the bare session's ``SessionOptions``,
MLflow's ``onnx_session_options``; ``torch.set_num_threads(1)``), and every trial runs with
``OMP_NUM_THREADS=1`` and no GPU. The model is prepared once per benchmark run (trained,
registered, its ONNX file written, MLflow's copy logged); then each side runs in a fresh
process, the sides interleaved over ``cheap_pairs`` rounds, the order rotating. A trial:

1. Imports (what the side's code imports, NumPy apart: ``import_s``), then load time: from
   nothing loaded to a first prediction on one row (``load_ms``: hone.models.load + predict;
   InferenceSession + run; build + first forward; pyfunc.load_model + predict);
   ``cold_s`` is both.
2. Batch 1: ``predict_calls`` calls after a warm-up, one row each (the test rows in turn),
   each call timed with ``perf_counter_ns``: median and p99 latency.
3. Batch 64: ``predict_batches`` batches of 64 rows after a warm-up, each timed: median and
   p99 latency, and samples/s (rows over the loop's summed time).
4. The labels of every test row, compared with the bare session's (computed once when the
   model was prepared), and the process's peak RSS.

Inputs are built before the timing (for MLflow, its chosen input type), and the garbage
collector is off in the timed loops. Ratios are hone's figure over each other side's, per
round, then median [range]. Aims: hone's median at most 1.30x the bare session's at batch
1, 1.10x at batch 64.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rss
import trials
from serving_sides import LOADERS, MODEL, THREADS, fastest, median, p99, paired, timed
from workloads import Sizes, emit, option, run_selected

HERE = Path(__file__).resolve().parent
SIDES = ("hone", "bare", "eager")
BATCH = 64
#: hone's figure over the bare session's, median over rounds: at most these.
AIMS = {"b1_vs_bare": 1.30, "b64_vs_bare": 1.10}
#: What every trial runs with: one thread for OpenMP and MKL, no GPU.
ENV = {"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS), "CUDA_VISIBLE_DEVICES": ""}


def _child(python: str, workdir: Path, *args: str) -> list[str]:
    return [python, str(HERE / "bench_models.py"), str(workdir), *args]


def models_predict(workdir: Path, sizes: Sizes) -> None:
    env = {**os.environ, **ENV}
    prepare = trials.spawn(
        _child(sys.executable, workdir, "--child=prepare", f"--epochs={sizes.model_epochs}"),
        "prepare",
        HERE,
        env=env,
    )
    prepared = prepare.results["prepare"]
    print(
        f"  prepared {prepared['ref']} ({prepared['epochs']} epochs, test accuracy "
        f"{prepared['test_accuracy']:.4f}) in {prepare.wall_s:.1f} s",
        flush=True,
    )
    pythons = dict.fromkeys(SIDES, sys.executable)
    mlflow_python = option("mlflow-python")
    logged: dict[str, Any] = {}
    if mlflow_python:
        saved = trials.spawn(
            _child(mlflow_python, workdir, "--child=mlflow_log"), "mlflow", HERE, env=env
        )
        logged = {**saved.results["mlflow_log"], "seconds": saved.wall_s}
        if not logged["same_graph"]:
            raise SystemExit("models_predict: MLflow's stored model.onnx is not the same file")
        pythons["mlflow"] = mlflow_python
    counts = (f"--calls={sizes.predict_calls}", f"--batches={sizes.predict_batches}")
    sides: dict[str, Callable[[int], trials.Trial]] = {
        side: (
            lambda r, side=side, python=python: trials.spawn(  # type: ignore[misc]
                _child(
                    python, workdir, "--child=predict", f"--side={side}", f"--round={r}", *counts
                ),
                side,
                HERE,
                env=env,
            )
        )
        for side, python in pythons.items()
    }
    rounds = trials.interleaved(sides, sizes.cheap_pairs, "predict")

    def figure(key: str) -> Callable[[trials.Trial], float]:
        return lambda t: float(t.results["child"][key])

    keys = (
        "b1_median_us",
        "b1_p99_us",
        "b64_median_us",
        "b64_p99_us",
        "b64_mean_us",
        "b64_samples_per_s",
        "import_s",
        "load_ms",
        "cold_s",
        "labels_agree",
        "peak_rss_mib",
    )
    out: dict[str, Any] = {
        "bench": "models_predict",
        "model": prepared["ref"],
        "epochs": prepared["epochs"],
        "test_accuracy": prepared["test_accuracy"],
        "test_rows": prepared["rows"],
        "onnx_bytes": prepared["onnx_bytes"],
        "batch": BATCH,
        "threads": THREADS,
        "calls": sizes.predict_calls,
        "batches": sizes.predict_batches,
        "prepare_s": prepare.wall_s,
        "aims": AIMS,
        "sides": {},
        "ratios": {},
    }
    for side in sides:
        found: dict[str, Any] = {k: trials.side_spread(rounds, side, figure(k)) for k in keys}
        found["threads"] = [row[side].results["child"]["threads"] for row in rounds]
        if side == "hone":
            for batch in ("b1", "b64"):
                for key in ("ratio", "hone_us", "bare_us", "overhead_us"):
                    found[f"paired_{batch}_{key}"] = trials.side_spread(
                        rounds,
                        side,
                        lambda t, b=batch, k=key: float(t.results["child"]["paired"][b][k]),  # type: ignore[misc]
                    )
        if side == "mlflow":
            found["input_b1"] = [row[side].results["child"]["input_b1"] for row in rounds]
            found["input_b64"] = [row[side].results["child"]["input_b64"] for row in rounds]
            found["input_probe_us"] = [row[side].results["child"]["probe_us"] for row in rounds]
        out["sides"][side] = found

    def hone_over(other: str, key: str) -> Callable[[dict[str, trials.Trial]], float]:
        return lambda r: figure(key)(r["hone"]) / figure(key)(r[other])

    for other in (side for side in sides if side != "hone"):
        for key, name in (
            ("b1_median_us", "b1"),
            ("b1_p99_us", "b1_p99"),
            ("b64_median_us", "b64"),
        ):
            out["ratios"][f"{name}_vs_{other}"] = trials.pair_ratios(rounds, hone_over(other, key))
    out["passed"] = {name: out["ratios"][name]["median"] <= aim for name, aim in AIMS.items()}
    if logged:
        out["mlflow_model"] = logged["uri"]
        out["mlflow_log_s"] = logged["seconds"]
    emit(out)


# Children ---------------------------------------------------------------------------


def _prepared(workdir: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((workdir / "prepared.json").read_text())
    return found


def prepare_child(workdir: Path) -> None:
    """Train, register (ONNX export, verified), write the export's file, the test rows and
    the bare session's labels for them: what every trial of every side reads."""
    import numpy as np
    import onnxruntime as ort

    import hone
    import hone.data
    import hone.models
    import hone.train
    from hone.blobs import open_blob_store
    from hone.registry import get_export
    from hone.store.database import database_for

    epochs = int(option("epochs", "10") or 10)
    ws = hone.init(workdir / "ws")
    raw = hone.data.import_dataset(
        "digits",
        "sklearn:digits",
        split="train=0.7,validation=0.15,test=0.15",
        stratify=True,
        workspace=ws,
    )
    data = hone.data.normalize(raw)
    trained = hone.train.train("builtin:cnn", data, params={"epochs": epochs}, workspace=ws)
    if trained.status.value != "finished":
        raise SystemExit(f"training ended {trained.status.value}: {trained.error}")
    registered = hone.models.register(MODEL, run=trained.run_id, formats="onnx", workspace=ws)
    version = registered.version
    # The graph hone.models.load reads: the registered export's blob, written out as is.
    digest = get_export(database_for(ws.store_uri), version, "onnx").digest
    graph = open_blob_store(ws.blob_uri).get_bytes(digest)
    onnx_path = workdir / "digits.onnx"
    onnx_path.write_bytes(graph)
    x, y = raw.to_numpy("test")
    assert y is not None
    rows = np.ascontiguousarray(x, dtype=np.float64)
    np.save(workdir / "rows.npy", rows)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    _, labels = session.run(None, {"input": rows})
    np.save(workdir / "labels.npy", labels)
    classes = [int(c) for c in version.signature["classes"]]
    accuracy = float((np.asarray(classes)[labels] == y).mean())
    prepared = {
        "ws": str(ws.home),
        "ref": version.ref,
        "epochs": epochs,
        "onnx": str(onnx_path),
        "onnx_sha256": digest,
        "onnx_bytes": len(graph),
        "classes": classes,
        "rows": int(rows.shape[0]),
        "test_accuracy": accuracy,
    }
    (workdir / "prepared.json").write_text(json.dumps(prepared, indent=1))
    emit({"bench": "prepare", **prepared})


def mlflow_log_child(workdir: Path) -> None:
    """In .venv-mlflow: log and register the same ONNX file in a SQLite store, once."""
    import logging
    import warnings

    import mlflow
    import mlflow.onnx
    import numpy as np
    import onnx
    import onnxruntime as ort
    from mlflow.models import infer_signature

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    prepared = _prepared(workdir)
    store = workdir / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    experiment = mlflow.create_experiment(
        "models", artifact_location=(store / "artifacts").as_uri()
    )
    rows = np.load(workdir / "rows.npy")[:2]
    session = ort.InferenceSession(prepared["onnx"], providers=["CPUExecutionProvider"])
    probabilities, labels = session.run(None, {"input": rows})
    signature = infer_signature({"input": rows}, {"probabilities": probabilities, "label": labels})
    with mlflow.start_run(experiment_id=experiment):
        mlflow.onnx.log_model(
            onnx.load(prepared["onnx"]),
            name="model",
            registered_model_name=MODEL,
            signature=signature,
            onnx_session_options={"intra_op_num_threads": THREADS},
            save_as_external_data=False,
        )
    (stored,) = (store / "artifacts").rglob("model.onnx")
    same = hashlib.sha256(stored.read_bytes()).hexdigest() == prepared["onnx_sha256"]
    emit({"bench": "mlflow_log", "uri": f"models:/{MODEL}/1", "same_graph": same})


def predict_child(workdir: Path) -> None:
    """One side's trial in this fresh process."""
    import numpy as np

    side = str(option("side"))
    calls = int(option("calls", "5000") or 5000)
    batches = int(option("batches", "2000") or 2000)
    prepared = _prepared(workdir)
    rows = np.load(workdir / "rows.npy")
    reference = np.load(workdir / "labels.npy")
    classes = np.asarray(prepared["classes"])
    singles = [np.ascontiguousarray(rows[i : i + 1]) for i in range(len(rows))]
    tiled = np.concatenate([rows] * math.ceil(8 * BATCH / len(rows)))
    full = [np.ascontiguousarray(tiled[i : i + BATCH]) for i in range(0, 8 * BATCH, BATCH)]
    chunks = [np.ascontiguousarray(rows[i : i + BATCH]) for i in range(0, len(rows), BATCH)]
    make = LOADERS[side]
    served = make(workdir, prepared, singles[0])
    extra: dict[str, Any] = {}
    b1_inputs: Sequence[Any] = singles
    b64_inputs: Sequence[Any] = full
    if served.shapes is not None:  # MLflow: the fastest input type it takes, per batch size
        (extra["input_b1"], b1_inputs, b1_probe), (extra["input_b64"], b64_inputs, b64_probe) = (
            fastest(served.predict, served.shapes, singles),
            fastest(served.predict, served.shapes, full),
        )
        extra["probe_us"] = {"b1": b1_probe, "b64": b64_probe}
    with served.context():
        b1 = timed(served.predict, b1_inputs, calls, max(100, calls // 10))
        b64 = timed(served.predict, b64_inputs, batches, max(10, batches // 10))
        labels = np.concatenate([served.labels(chunk) for chunk in chunks])
        if served.bare is not None:
            extra["paired"] = {
                "b1": paired(served.predict, served.bare, b1_inputs, calls),
                "b64": paired(served.predict, served.bare, b64_inputs, batches),
            }
    expected = classes[reference] if served.values else reference
    emit(
        {
            "bench": "child",
            "side": side,
            "import_s": served.import_s,
            "load_ms": 1000 * served.load_s,
            "cold_s": served.import_s + served.load_s,
            "b1_median_us": median(b1) / 1000,
            "b1_p99_us": p99(b1) / 1000,
            "b64_median_us": median(b64) / 1000,
            "b64_p99_us": p99(b64) / 1000,
            "b64_mean_us": sum(b64) / len(b64) / 1000,
            "b64_samples_per_s": BATCH * len(b64) / (sum(b64) / 1e9),
            "labels_agree": float((np.asarray(labels) == expected).mean()),
            "threads": served.threads,
            "peak_rss_mib": rss.peak_mib(),
            **extra,
        }
    )


def main() -> None:
    child = option("child")
    if child == "prepare":
        prepare_child(Path(sys.argv[1]))
        return
    if child == "mlflow_log":
        mlflow_log_child(Path(sys.argv[1]))
        return
    if child == "predict":
        predict_child(Path(sys.argv[1]))
        return
    run_selected({"models_predict": models_predict})


if __name__ == "__main__":
    main()
