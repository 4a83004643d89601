"""Registering runs' checkpoints: what a version records (lineage, metrics, signature),
each export verified against the eager model (preprocessing inside the ONNX graph), the
predictor loaded without PyTorch, evaluation against scikit-learn's metrics, and every
kind of bad input refused with nothing recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hone
import hone.models
from hone.errors import BlobError, NotFoundError, UserError, ValidationError
from hone.export.failures import ExportError
from hone.registry import get_export, list_exports, list_models
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.queries import get_run
from tests.models.conftest import Trained
from tests.models.helpers import UNEXPORTABLE, recipe_file, stores

pytestmark = pytest.mark.slow


def test_a_registered_version_records_its_lineage_metrics_and_signature(
    trained: Trained,
) -> None:
    ws = trained.ws
    db, _ = stores(ws)
    registered = hone.models.register(
        "lineage", run=trained.strong, formats="onnx,safetensors,pt2", workspace=ws
    )
    version = registered.version
    assert version.ref == "lineage@1"
    saved = list_checkpoints(db, trained.strong)
    best = min(saved, key=lambda c: c.metrics["val/loss"])
    assert (version.step, version.weights) == (best.step, best.weights)
    assert version.metrics == best.metrics
    assert version.dataset_version == trained.data.id
    body = version.body
    assert body["data"]["ref"] == f"digits@{trained.data.id}"
    assert body["preprocessing"] == [dict(t) for t in trained.data.manifest.transforms]
    run = get_run(db, trained.strong)
    assert body["git"] == {"commit": run.git_commit, "dirty": run.git_dirty}
    assert body["recipe"] == "builtin:cnn" and body["params"]["epochs"] == 4
    signature = version.signature
    assert signature["inputs"] == [{"name": "input", "dtype": "float64", "shape": [None, 64]}]
    assert signature["classes"] == list(range(10))
    assert [o["name"] for o in signature["outputs"]] == ["probabilities", "label"]
    # Every format verified on held-out rows, and what made it recorded.
    found = {e.format: e for e in list_exports(db, version)}
    assert set(found) == {"onnx", "safetensors", "pt2"}
    test_rows = trained.raw.splits["test"]
    for export in found.values():
        check = export.body["verification"]
        assert check["split"] == "test" and check["rows"] == min(256, test_rows)
        assert 0 <= check["max_abs_diff"] <= 1e-4 and check["labels_agree"] == check["rows"]
        assert "torch" in export.body["packages"]
    assert found["onnx"].body["opset"] >= 17
    assert {"onnx", "onnxruntime", "onnxscript"} <= set(found["onnx"].body["packages"])
    assert found["safetensors"].body["verification"]["max_abs_diff"] == 0.0
    # Lineage: model → run → checkpoint → normalized version → its parent → the source.
    _, tree = hone.models.show("lineage@1", workspace=ws)
    kinds = []
    node = tree
    while node["children"]:
        node = node["children"][-1]
        kinds.append(node["kind"])
    assert kinds == ["run", "checkpoint", "dataset", "dataset", "source"]
    assert tree["children"][0]["id"] == trained.strong
    assert tree["children"][0]["children"][-1]["weights"] == best.weights


def test_checkpoints_are_chosen_by_best_latest_or_step(trained: Trained) -> None:
    ws = trained.ws
    db, _ = stores(ws)
    saved = list_checkpoints(db, trained.strong)
    latest = hone.models.register(
        "pick", run=trained.strong, checkpoint="latest", formats="none", workspace=ws
    )
    assert latest.version.step == saved[-1].step and latest.exports == []
    first = hone.models.register(
        "pick", run=trained.strong[:10], checkpoint=str(saved[0].step), formats="none", workspace=ws
    )
    assert first.version.step == saved[0].step
    with pytest.raises(NotFoundError, match=r"no checkpoint at step 7; its steps: "):
        hone.models.register("pick", run=trained.strong, checkpoint="7", workspace=ws)
    with pytest.raises(ValidationError, match="give best, latest or a step"):
        hone.models.register("pick", run=trained.strong, checkpoint="newest", workspace=ws)
    assert [v.version for v in hone.models.versions("pick", workspace=ws)] == [1, 2]


def test_the_onnx_graph_takes_raw_rows_and_matches_the_eager_model(trained: Trained) -> None:
    import onnx
    import torch

    from hone.export.build import build

    ws = trained.ws
    db, blobs = stores(ws)
    version = hone.models.register("graph", run=trained.strong, workspace=ws).version
    proto = onnx.load_from_string(blobs.get_bytes(get_export(db, version, "onnx").digest))
    (graph_input,) = proto.graph.input
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert graph_input.type.tensor_type.shape.dim[0].dim_param  # a dynamic batch
    ops = {n.op_type for n in proto.graph.node}
    assert {"Sub", "Mul", "Softmax", "ArgMax"} <= ops  # the fitted normalize is inside
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["hone.signature"])["classes"] == list(range(10))
    predictor = hone.models.load("graph@1", workspace=ws)
    raw, labels = trained.raw.to_numpy("test")
    normalized, _ = trained.data.to_numpy("test")  # what training fed the network
    assert not np.allclose(raw, normalized)
    built = build(version.ref, version.body, version.weights, trained.data, blobs)
    with torch.no_grad():
        logits = built.network(torch.from_numpy(normalized).float())
    prediction = predictor.predict(raw)
    eager = torch.softmax(logits, dim=-1).numpy()
    assert np.abs(prediction.probabilities - eager).max() < 1e-5
    assert (prediction.labels == logits.argmax(dim=-1).numpy()).all()
    assert (prediction.labels == labels).mean() > 0.5  # chance: 0.1
    # Any batch size, one row included.
    assert predictor.predict(raw[:1]).labels.shape == (1,)
    empty = predictor.predict(raw[:0]).probabilities
    assert empty is not None and empty.shape == (0, 10)


def test_loading_needs_neither_torch_nor_the_recipe(trained: Trained, tmp_path: Path) -> None:
    ws = trained.ws
    hone.models.register("bare", run=trained.weak, workspace=ws)
    script = (
        "import sys, numpy as np, hone.models\n"
        f"p = hone.models.load('bare@latest', workspace={str(ws.home)!r})\n"
        "out = p.predict(np.zeros((3, 64)))\n"
        "assert out.probabilities.shape == (3, 10), out\n"
        "print(sorted(m for m in ('torch', 'safetensors', 'pickle') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "torch" not in done.stdout and "safetensors" not in done.stdout


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (np.zeros((2, 65)), "got shape (2, 65)"),
        (np.zeros(64), "one sample: give a batch of one"),
        (np.zeros((2, 8, 8)), "got shape (2, 8, 8)"),
        (np.array([["a"] * 64]), "got <U1 values"),
        (np.zeros((1, 64), dtype=complex), "got complex128 values"),
        ([[1.0] * 64, [1.0] * 3], "does not make one"),
        (None, "got object values"),
    ],
)
def test_predict_refuses_what_does_not_fit_naming_the_signature(
    trained: Trained, rows: object, says: str
) -> None:
    ws = trained.ws
    if not any(m.name == "sig" for m in list_models(stores(ws)[0])):
        hone.models.register("sig", run=trained.weak, workspace=ws)
    predictor = hone.models.load("sig@1", workspace=ws)
    with pytest.raises(ValidationError) as info:
        predictor.predict(rows)
    assert "input: float64[batch, 64]" in str(info.value) and says in str(info.value)


def test_predict_converts_numbers_that_keep_their_meaning(trained: Trained) -> None:
    ws = trained.ws
    hone.models.register("conv", run=trained.weak, workspace=ws)
    predictor = hone.models.load("conv@1", workspace=ws)
    raw, _ = trained.raw.to_numpy("test")
    exact = predictor.predict(raw[:5])
    as_ints = predictor.predict(raw[:5].astype(np.int64))  # digits' pixels are integers
    as_list = predictor.predict(raw[:5].tolist())
    for other in (as_ints, as_list):
        assert (other.labels == exact.labels).all()
        assert other.probabilities is not None and exact.probabilities is not None
        assert np.allclose(other.probabilities, exact.probabilities)


def test_evaluation_agrees_with_scikit_learn(trained: Trained) -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss

    ws = trained.ws
    hone.models.register("eval", run=trained.strong, workspace=ws)
    result = hone.models.evaluate("eval@1", trained.raw, "test", workspace=ws)
    raw, labels = trained.raw.to_numpy("test")
    assert labels is not None
    out = hone.models.load("eval@1", workspace=ws).predict(raw)
    assert result.rows == len(raw) and result.unknown_labels == 0
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(labels, out.labels))
    assert result.metrics["macro_f1"] == pytest.approx(
        f1_score(labels, out.labels, average="macro")
    )
    assert result.metrics["log_loss"] == pytest.approx(
        log_loss(labels, out.probabilities, labels=list(range(10))), rel=1e-4
    )
    assert result.confusion == confusion_matrix(labels, out.labels, labels=list(range(10))).tolist()
    assert sum(c["support"] for c in result.per_class.values()) == len(raw)
    with pytest.raises(ValidationError, match="no split 'nope'"):
        hone.models.evaluate("eval@1", trained.raw, "nope", workspace=ws)


def test_export_on_demand_writes_the_verified_file(trained: Trained, tmp_path: Path) -> None:
    ws = trained.ws
    db, blobs = stores(ws)
    version = hone.models.register(
        "ondemand", run=trained.weak, formats="none", workspace=ws
    ).version
    with pytest.raises(NotFoundError, match="has no onnx export; make one with hone models export"):
        hone.models.load("ondemand@1", workspace=ws)
    out = tmp_path / "model.onnx"
    made = hone.models.export("ondemand@1", "onnx", out=out, workspace=ws)
    assert out.read_bytes() == blobs.get_bytes(made.digest)
    assert made.body["verification"]["max_abs_diff"] <= 1e-4
    pt2 = hone.models.export("ondemand@1", "pt2", workspace=ws)
    assert {e.format for e in list_exports(db, version)} == {"onnx", "pt2"}
    assert blobs.exists(pt2.digest)
    assert hone.models.load("ondemand@1", workspace=ws).predict(np.zeros((1, 64))).labels.shape == (
        1,
    )
    # The recorded export is reused (no PyTorch, no time); --force makes it again.
    again = hone.models.export("ondemand@1", "onnx", workspace=ws)
    assert (again.digest, again.created_at) == (made.digest, made.created_at)
    forced = hone.models.export("ondemand@1", "onnx", force=True, workspace=ws)
    assert forced.created_at > made.created_at and forced.digest == made.digest  # deterministic
    for wrong in ("tflite", "none", "onnx,pt2", ""):
        with pytest.raises(ValidationError, match="format"):
            hone.models.export("ondemand@1", wrong, workspace=ws)
    with pytest.raises(ValidationError, match="is a folder"):
        hone.models.export("ondemand@1", "onnx", out=tmp_path, workspace=ws)
    with pytest.raises(ValidationError, match="does not exist"):
        hone.models.export("ondemand@1", "onnx", out=tmp_path / "no" / "m.onnx", workspace=ws)


def test_an_unexportable_operator_is_named_and_nothing_is_registered(
    trained: Trained, tmp_path: Path
) -> None:
    ws = trained.ws
    db, _ = stores(ws)
    recipe = recipe_file(tmp_path, UNEXPORTABLE, "Unexportable")
    out = hone.train.train(recipe, trained.data, params={"epochs": 1}, workspace=ws)
    assert out.status.value == "finished", out.error
    with pytest.raises(ExportError, match=r"operator \S*bessel_j0 has no ONNX conversion"):
        hone.models.register("bessel", run=out.run_id, workspace=ws)
    assert "bessel" not in {m.name for m in list_models(db)}
    # Another format works; asking for ONNX later fails the same way and records nothing.
    version = hone.models.register(
        "bessel", run=out.run_id, formats="safetensors", workspace=ws
    ).version
    with pytest.raises(ExportError, match="bessel_j0"):
        hone.models.export("bessel@1", "onnx", workspace=ws)
    assert [e.format for e in list_exports(db, version)] == ["safetensors"]


def test_runs_that_cannot_be_registered_are_refused(trained: Trained) -> None:
    ws = trained.ws
    db, _ = stores(ws)
    with hone.start_run("plain", workspace=ws) as run:
        run.log_metric("x", 1.0)
    with pytest.raises(NotFoundError, match="has no checkpoints"):
        hone.models.register("refused", run=run.id, workspace=ws)
    with pytest.raises(NotFoundError, match="no run 'ffff'"):
        hone.models.register("refused", run="ffff", workspace=ws)
    with pytest.raises(ValidationError, match="--run RUN"):
        hone.models.register("refused", workspace=ws)
    with pytest.raises(ValidationError, match="model name"):
        hone.models.register("bad name", run=trained.weak, workspace=ws)
    with pytest.raises(NotFoundError, match="no study named 'nope'"):
        hone.models.register("refused", study="nope", workspace=ws)
    assert "refused" not in {m.name for m in list_models(db)}


def test_a_corrupt_onnx_blob_is_refused_on_load(trained: Trained) -> None:
    ws = trained.ws
    db, blobs = stores(ws)
    version = hone.models.register("corrupt", run=trained.weak, workspace=ws).version
    path = blobs._path(get_export(db, version, "onnx").digest)  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.write_bytes(b"not a graph")
    with pytest.raises(BlobError, match="corrupt"):
        hone.models.load("corrupt@1", workspace=ws)


def test_a_user_error_is_said_for_a_second_promotion_of_the_same_version(trained: Trained) -> None:
    ws = trained.ws
    hone.models.register("same", run=trained.weak, workspace=ws)
    hone.models.alias("same@1", "champion", workspace=ws)
    with pytest.raises(UserError, match="already is same@champion"):
        hone.models.promote(
            "same@1", "champion", "accuracy >= champion", "digits@latest", workspace=ws
        )


def test_a_studys_best_trial_is_registered_with_its_best_checkpoint(trained: Trained) -> None:
    import hone.tune
    from hone.tune.studies import get_study

    ws = trained.ws
    db, _ = stores(ws)
    hone.tune.tune(
        "builtin:mlp",
        f"digits@{trained.data.id}",
        trials=2,
        study="small",
        params={"epochs": 1},
        workspace=ws,
    )
    result = get_study(db, "small").result
    assert result is not None
    registered = hone.models.register("fromstudy", study="small", workspace=ws)
    version = registered.version
    assert (version.run_id, version.step) == (
        result["checkpoint"]["run_id"],
        result["checkpoint"]["step"],
    )
    assert version.body["source"] == {"kind": "study", "study": "small", "trial": result["trial"]}
    assert version.body["recipe"] == "builtin:mlp"
    _, tree = hone.models.show("fromstudy@1", workspace=ws)
    assert any(c["kind"] == "study" for c in tree["children"][0]["children"])
    with pytest.raises(ValidationError, match="--checkpoint goes with --run"):
        hone.models.register("fromstudy", study="small", checkpoint="latest", workspace=ws)


def test_the_python_example_in_docs_models_runs_as_written(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    docs = Path(__file__).resolve().parents[2] / "docs" / "models.md"
    (block, *_) = re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.S)
    monkeypatch.setenv("HONE_HOME", str(trained.ws.home))
    rows, _ = trained.raw.to_numpy("test")
    scope: dict[str, Any] = {"run_id": trained.strong, "raw_rows": rows}
    exec(compile(block, str(docs), "exec"), scope)
    assert scope["out"].labels.shape == (len(rows),)
    assert scope["result"].metrics["accuracy"] > 0.5
    assert {e.format for e in list_exports(stores(trained.ws)[0], scope["registered"].version)} == {
        "onnx",
        "safetensors",
    }
