"""What a hostile review of the registry found, each kept as a test: blobs a version needs
never collected under it, --out never clobbering what is not an export file, a changed
recipe file refused, gates naming aliases that do not exist, data that does not fit the
model, non-finite rows, moves of the aliases a gate compared against."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hone.data
import hone.models
import hone.train
from hone.errors import ConflictError, NotFoundError, UserError, ValidationError
from hone.export.failures import ExportError
from hone.models import promotion, registering
from hone.models.evaluation import score
from hone.registry import aliases_of, get_export, move_alias
from tests.models.conftest import Trained
from tests.models.helpers import recipe_file, stores

pytestmark = pytest.mark.slow

TEXT = "import builtins\nfrom hone.train.builtin import MLP\n\nclass Mine(MLP):\n    pass\n"


def _csv(path: Path, labels: list[Any], features: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    names = [f"f{i}" for i in range(features)]
    lines = [",".join([*names, "target"])]
    for label in labels:
        x = rng.normal(size=features) + (hash(str(label)) % 3 if isinstance(label, str) else 0)
        lines.append(",".join([*(f"{v:.4f}" for v in x), str(label)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_blob_collected_while_registering_is_stored_again(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = trained.ws
    db, blobs = stores(ws)
    hone.models.register("shared", run=trained.weak, workspace=ws)  # @1: same file as @2
    from hone.registry import insert_version as insert

    def deleting_meanwhile(*args: Any, **kwargs: Any) -> Any:
        hone.models.delete("shared@1", workspace=ws)  # collects the file @2 is about to need
        return insert(*args, **kwargs)

    monkeypatch.setattr(registering, "insert_version", deleting_meanwhile)
    version = hone.models.register("shared", run=trained.weak, workspace=ws).version
    assert blobs.exists(get_export(db, version, "onnx").digest)
    assert hone.models.load("shared@2", workspace=ws).predict(np.zeros((1, 64))).labels.shape == (
        1,
    )


def test_out_never_replaces_what_is_not_a_file_of_ours(trained: Trained, tmp_path: Path) -> None:
    ws = trained.ws
    hone.models.register("out", run=trained.weak, workspace=ws)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValidationError, match="not a regular file"):
        hone.models.export("out@1", out=fifo, workspace=ws)
    assert fifo.is_fifo()
    database = ws.home / "hone.db"
    before = database.stat().st_size
    with pytest.raises(ValidationError, match="inside the workspace's own files"):
        hone.models.export("out@1", out=database, workspace=ws)
    assert database.stat().st_size == before
    target = tmp_path / "real.onnx"
    target.write_bytes(b"old")
    link = tmp_path / "link.onnx"
    link.symlink_to(target)
    hone.models.export("out@1", out=link, workspace=ws)  # written through the link
    assert link.is_symlink() and target.stat().st_size > 1000
    for bad, says in ((3, "must be a file path"), ("a\x00b", "must be a file path"),
                      (tmp_path / ("a" * 300), "too long")):  # fmt: skip
        with pytest.raises(ValidationError, match=says):
            hone.models.export("out@1", out=bad, workspace=ws)  # type: ignore[arg-type]


def test_a_recipe_file_changed_since_its_run_is_refused(trained: Trained, tmp_path: Path) -> None:
    ws = trained.ws
    recipe = recipe_file(tmp_path, TEXT, "Mine")
    out = hone.train.train(recipe, trained.data, params={"epochs": 1}, workspace=ws)
    version = hone.models.register("changed", run=out.run_id, workspace=ws).version
    assert version.body["recipe_source"]["path"] == "recipe/mine.py"
    path = Path(recipe.rsplit(":", 1)[0])
    path.write_text(
        TEXT.replace("pass", "def model(self, p, d):\n        return super().model(p, d)")
    )
    with pytest.raises(ValidationError, match="is not the file its run trained with"):
        hone.models.register("changed", run=out.run_id, workspace=ws)
    with pytest.raises(ValidationError, match=r"artifact recipe/mine\.py"):
        hone.models.export("changed@1", "pt2", workspace=ws)
    path.write_text(TEXT)  # restored: exports again
    assert hone.models.export("changed@1", "pt2", workspace=ws).format == "pt2"


def test_a_promotion_fails_if_an_alias_its_gate_compared_moved(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = trained.ws
    db, _ = stores(ws)
    for run in (trained.weak, trained.strong, trained.strong):
        hone.models.register("two", run=run, workspace=ws)
    hone.models.alias("two@1", "champion", workspace=ws)
    calls: list[int] = []

    def racing(*args: Any) -> Any:
        if not calls:
            move_alias(db, "two", "champion", 3, why="meanwhile")
        calls.append(1)
        return score(*args)

    monkeypatch.setattr(promotion, "score", racing)
    on = f"digits@{trained.raw.id}:validation"
    with pytest.raises(ConflictError, match="two@champion moved while this was deciding"):
        hone.models.promote("two@2", "challenger", "accuracy >= champion", on, workspace=ws)
    assert aliases_of(db, "two") == {"champion": 3}


def test_text_labels_regression_and_data_that_does_not_fit(
    trained: Trained, tmp_path: Path
) -> None:
    ws = trained.ws
    words = ["red", "green", "blue"] * 40
    text = hone.data.import_dataset("words", _csv(tmp_path / "w.csv", words), label="target",
                                    split="train=0.8,test=0.2", workspace=ws)  # fmt: skip
    numbers = hone.data.import_dataset(
        "numbers", _csv(tmp_path / "n.csv", [0.5 + i / 7 for i in range(120)]),
        label="target", split="train=0.8,test=0.2", workspace=ws,
    )  # fmt: skip
    assert numbers.manifest.classes is None
    classify = hone.train.train("builtin:mlp", text, params={"epochs": 2}, workspace=ws)
    regress = hone.train.train("builtin:mlp", numbers, params={"epochs": 2}, workspace=ws)
    hone.models.register("words", run=classify.run_id, workspace=ws)
    hone.models.register(
        "numbers", run=regress.run_id, formats="onnx,safetensors,pt2", workspace=ws
    )
    predictor = hone.models.load("words@1", workspace=ws)
    rows, labels = text.to_numpy("test")
    assert set(predictor.predict(rows).labels) <= {"red", "green", "blue"}
    result = hone.models.evaluate("words@1", text, "test", workspace=ws)
    assert labels is not None
    assert result.classes == ["blue", "green", "red"] and result.rows == len(labels)
    values = hone.models.load("numbers@1", workspace=ws).predict(numbers.to_numpy("test")[0])
    assert values.probabilities is None and values.labels.dtype == np.float32
    assert set(hone.models.evaluate("numbers@1", numbers, workspace=ws).metrics) == {
        "mse", "rmse", "mae", "r2"
    }  # fmt: skip
    with pytest.raises(ValidationError, match=r"predicts numbers; .* labels are"):
        hone.models.evaluate("numbers@1", text, "test", workspace=ws)
    with pytest.raises(ValidationError, match=r"none of .* labels is a class of words@1"):
        hone.models.evaluate("words@1", numbers, "test", workspace=ws)
    with pytest.raises(
        UserError, match="words@1 is a classification model; this run's is regression"
    ):
        hone.models.register("words", run=regress.run_id, workspace=ws)
    # Same shape, other columns: refused, not scored.
    reordered = tmp_path / "r.csv"
    lines = (tmp_path / "w.csv").read_text().splitlines()
    header = lines[0].split(",")
    lines[0] = ",".join([header[1], header[0], *header[2:]])
    reordered.write_text("\n".join(lines) + "\n")
    other = hone.data.import_dataset("reordered", reordered, label="target", workspace=ws)
    with pytest.raises(ValidationError, match="feature 0 is 'f1' there, 'f0' in the model"):
        hone.models.evaluate("words@1", other, workspace=ws)


def test_predict_refuses_non_finite_rows_and_answers_no_rows(trained: Trained) -> None:
    ws = trained.ws
    hone.models.register("finite", run=trained.weak, workspace=ws)
    predictor = hone.models.load("finite@1", workspace=ws)
    rows = np.zeros((4, 64))
    rows[1, 3], rows[3, 0] = np.nan, np.inf
    with pytest.raises(ValidationError, match=r"row\(s\) 1, 3 have NaN or infinite values"):
        predictor.predict(rows)
    empty = predictor.predict(np.zeros((0, 64)))
    assert empty.labels.shape == (0,) and empty.probabilities is not None
    assert empty.probabilities.shape == (0, 10)
    for threads in (0, 2**40, True, "2"):
        with pytest.raises(ValidationError, match="threads="):
            hone.models.load("finite@1", workspace=ws, threads=threads)  # type: ignore[arg-type]


def test_odd_arguments_are_refused_before_anything_is_recorded(trained: Trained) -> None:
    ws = trained.ws
    db, _ = stores(ws)
    hone.models.register("odd", run=trained.weak, workspace=ws)
    hone.models.alias("odd@1", "champion", workspace=ws)
    runs = len(hone.search_runs(promotion.EXPERIMENT, workspace=ws))
    with pytest.raises(ValidationError, match="why is not valid Unicode"):
        hone.models.promote("odd@1", "challenger", "accuracy >= 0", "digits@latest",
                            why="\ud800", workspace=ws)  # fmt: skip
    assert len(hone.search_runs(promotion.EXPERIMENT, workspace=ws)) == runs
    with pytest.raises(ValidationError, match="remove must be true or false"):
        hone.models.alias("odd@1", "champion", remove="no", workspace=ws)  # type: ignore[arg-type]
    assert aliases_of(db, "odd") == {"champion": 1}
    with pytest.raises(ValidationError, match="give best, latest or a step"):
        hone.models.register("odd", run=trained.weak, checkpoint="²", workspace=ws)
    with pytest.raises(ValidationError, match="not bytes"):
        hone.models.register("odd", run=trained.weak, formats=b"onnx", workspace=ws)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="study must be a study's name"):
        hone.models.register("odd", study=["s"], workspace=ws)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="split must be a split name"):
        hone.models.evaluate("odd@1", trained.raw, ["test"], workspace=ws)  # type: ignore[arg-type]
    hone.models.alias("odd@1", "champion", remove=True, workspace=ws)
    hone.models.delete("odd@1", workspace=ws)
    with pytest.raises(NotFoundError, match="has no versions \\(every version was deleted\\)"):
        hone.models.get("odd", workspace=ws)


HELPED = """from hone.train.builtin import MLP
import helper

class Helped(MLP):
    def model(self, p, d):
        return helper.build(super().model(p, d))
"""


def test_a_forced_export_must_rebuild_the_network_the_version_serves(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = trained.ws
    db, _ = stores(ws)
    (tmp_path / "helper.py").write_text("def build(net):\n    return net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = recipe_file(tmp_path, HELPED, "Helped")
    out = hone.train.train(recipe, trained.data, params={"epochs": 1}, workspace=ws)
    version = hone.models.register("helped", run=out.run_id, workspace=ws).version
    before = get_export(db, version, "onnx")
    # A module the recipe imports changes (the recipe's own file does not): a network
    # that answers otherwise. Made again, the export would serve another model: refused.
    (tmp_path / "helper.py").write_text(
        "def build(net):\n    net.register_forward_hook(lambda m, i, out: -out)\n    return net\n"
    )
    sys.modules.pop("helper", None)
    with pytest.raises(ExportError, match="is not the one its recorded ONNX export holds"):
        hone.models.export("helped@1", "onnx", force=True, workspace=ws)
    assert get_export(db, version, "onnx") == before


def test_out_never_writes_into_a_store_or_blob_folder_outside_the_workspace(
    trained: Trained, tmp_path: Path
) -> None:
    from hone.config import Workspace
    from hone.store.setup import init_workspace

    outside = tmp_path / "outside"
    outside.mkdir()
    ws, _ = init_workspace(
        tmp_path / "ws2",
        store_uri=f"sqlite:///{outside / 'meta.db'}",
        blob_uri=str(outside / "blobs"),  # a plain path, not a file:// URL
    )
    assert isinstance(ws, Workspace)
    raw = hone.data.import_dataset("d", "sklearn:iris", split="train=0.8,test=0.2", workspace=ws)
    run = hone.train.train("builtin:mlp", raw, params={"epochs": 1}, workspace=ws)
    version = hone.models.register("m", run=run.run_id, workspace=ws).version
    weights = outside / "blobs" / "sha256" / version.weights[:2] / version.weights
    for target in (outside / "meta.db", outside / "meta.db-wal", weights, outside / "x.onnx"):
        with pytest.raises(ValidationError, match="inside the workspace's own files"):
            hone.models.export("m@1", out=target, workspace=ws)
    loop = tmp_path / "loop1"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    with pytest.raises(ValidationError, match="--out"):
        hone.models.export("m@1", out=loop, workspace=ws)
    shown = hone.models.get("m@1", workspace=ws).to_dict()
    assert shown["checkpoint"]["weights"] == version.weights and "epoch" in shown["checkpoint"]
    assert hone.models.evaluate("m@1", raw, workspace=ws).rows == raw.splits["test"]


def test_evaluation_refuses_non_finite_rows_and_other_dtypes_naming_the_data(
    trained: Trained, tmp_path: Path
) -> None:
    ws = trained.ws
    csv = _csv(tmp_path / "f.csv", ["a", "b"] * 30)
    lines = csv.read_text().splitlines()
    lines[3] = "," + lines[3].split(",", 1)[1]  # an empty cell: NaN
    csv.write_text("\n".join(lines) + "\n")
    floats = hone.data.import_dataset(
        "nans", csv, label="target", allow_nonfinite=True, workspace=ws
    )
    clean = hone.data.import_dataset("clean", _csv(tmp_path / "c.csv", ["a", "b"] * 30),
                                     label="target", workspace=ws)  # fmt: skip
    unsplit = {"epochs": 1, "val_split": "none", "train_split": "all"}
    run = hone.train.train("builtin:mlp", clean, params=unsplit, workspace=ws)
    hone.models.register("nans", run=run.run_id, checkpoint="latest", workspace=ws)
    with pytest.raises(ValidationError, match=r"nans@\w+ has NaN or infinite features in 1 row"):
        hone.models.evaluate("nans@1", floats, workspace=ws)
    ints = tmp_path / "i.csv"
    ints.write_text(
        "f0,f1,f2,f3,target\n" + "".join(f"{i},{i},{i},{i},{'ab'[i % 2]}\n" for i in range(20))
    )
    as_ints = hone.data.import_dataset("ints", ints, label="target", workspace=ws)
    assert as_ints.manifest.features.dtype == "int64"
    # Integer features go into a float64 model unchanged: scored, not refused.
    assert hone.models.evaluate("nans@1", as_ints, workspace=ws).rows == 20
