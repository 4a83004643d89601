"""A recipe's parts beside its model, and the job's params, under hostile use: each
mistake is one message before any process starts, and what trains means what it says."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hone.data
import hone.train
from hone.blobs import open_blob_store
from hone.config import Workspace
from hone.errors import ValidationError
from hone.store.database import database_for
from hone.tracking.entities import RunStatus
from hone.tracking.queries import get_run, metric_history
from hone.train.launch import prepare
from tests.train.helpers import digits

HEAD = "import sys, torch\nfrom hone.train.builtin import MLP\n\nclass R(MLP):\n"


def _recipe(folder: Path, body: str, head: str = HEAD) -> str:
    path = folder / "parts.py"
    path.write_text(head + body)
    return f"{path}:R"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    def loss(self, p, d): return 'ce'\n", r"loss\(\) returned str"),
        (
            "    def optimizer(self, p, m): return 'sgd'\n",
            r"optimizer\(\) returned str, not a torch.optim.Optimizer \(to choose",
        ),
        (
            "    def optimizer(self, p, m): return torch.optim.SGD([torch.zeros(1, "
            "requires_grad=True)], lr=0.1)\n",
            "its parameters are not that model's",
        ),
        ("    def scheduler(self, p, o, t): return 42\n", "not a learning-rate scheduler"),
        (
            "    def scheduler(self, p, o, t):\n"
            "        other = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1)\n"
            "        return torch.optim.lr_scheduler.StepLR(other, 5)\n",
            "must schedule the optimizer it is given",
        ),
        ("    def metrics(self, p, d): return [1]\n", r"metrics\(\) returned list"),
        (
            "    def metrics(self, p, d): return {'acc': lambda o, y: o.sum()}\n",
            "'acc' is one the loop computes itself",
        ),
        ("    def metrics(self, p, d): return {'f1': 3}\n", "'f1' is int, not a function"),
        (
            "    def metrics(self, p, d): return {'m': lambda o, y: o}\n",
            r"metric 'm' gave shape \(2, 10\) for a batch of 2",
        ),
        (
            "    def metrics(self, p, d): return {'m': lambda o, y: 1 / 0}\n",
            "metric 'm' failed on a batch of 2: ZeroDivisionError",
        ),
        ("    def model(self, p, d): sys.exit(3)\n", r"model\(\) failed: SystemExit: 3"),
    ],
)
def test_junk_from_a_recipe_is_refused_before_launch(
    sqlite_workspace: Workspace, tmp_path: Path, body: str, message: str
) -> None:
    """Found by the hostile pass: these reached the workers (or, for sys.exit, ended the
    command without a word)."""
    ref = digits(sqlite_workspace)
    with pytest.raises(ValidationError, match=message):
        prepare(_recipe(tmp_path, body), ref, {}, workspace=sqlite_workspace)


def test_a_recipe_that_exits_while_importing_says_so(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    ref = digits(sqlite_workspace)
    recipe = _recipe(tmp_path, "    pass\n", head="import sys\nsys.exit('bye')\nclass R:\n")
    with pytest.raises(ValidationError, match="does not import: SystemExit: bye"):
        prepare(recipe, ref, {}, workspace=sqlite_workspace)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"best_metric": "val/accuracy"}, "best_metric='val/accuracy': this job does not log it"),
        ({"seed": 2**64}, "seed must be at most"),
        ({"epochs": 2**70}, "epochs must be at most"),
        ({"momentum": 5.0}, "momentum must be at most 1"),
        ({"epochs": "\uff11\uff12"}, "epochs is an integer"),
        ({"epochs": 1.5}, "epochs is an integer, not a number"),
    ],
)
def test_params_out_of_range_are_refused(
    sqlite_workspace: Workspace, params: dict[str, Any], message: str
) -> None:
    ref = digits(sqlite_workspace)
    with pytest.raises(ValidationError, match=message):
        prepare("builtin:mlp", ref, params, workspace=sqlite_workspace, where="params")


def test_the_api_names_its_own_arguments(sqlite_workspace: Workspace) -> None:
    ref = digits(sqlite_workspace)
    with pytest.raises(ValidationError, match="params: give a dict of name to value, got str"):
        hone.train.train("builtin:mlp", ref, params="epochs=1", workspace=sqlite_workspace)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="params epochs='x'"):
        hone.train.train("builtin:mlp", ref, params={"epochs": "x"}, workspace=sqlite_workspace)
    with pytest.raises(ValidationError, match="experiment"):
        hone.train.train("builtin:mlp", ref, experiment="", workspace=sqlite_workspace)


def test_numpy_numbers_a_version_object_and_a_recipe_file_train(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    """A tuning loop hands NumPy numbers and the version it holds; a recipe file is
    recorded by its absolute path and its source is kept with the run."""
    ws = sqlite_workspace
    version = hone.data.get(digits(ws), workspace=ws)
    recipe = _recipe(tmp_path, "    pass\n")
    outcome = hone.train.train(
        recipe, version, params={"epochs": np.int64(1), "lr": np.float32(0.003)}, workspace=ws
    )
    assert outcome.status is RunStatus.FINISHED, outcome.error
    db = database_for(ws.store_uri)
    run = get_run(db, outcome.run_id)
    assert run.name == "R-digits" and run.params["epochs"] == "1"
    assert run.params["recipe"] == f"{tmp_path / 'parts.py'}:R"
    artifact = next(a for a in run.artifacts if a.path == "recipe/parts.py")
    blobs = open_blob_store(ws.blob_uri)
    assert blobs.get_bytes(artifact.digest).decode() == (tmp_path / "parts.py").read_text()


def test_a_metric_per_sample_or_per_batch_means_the_same(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    """Found by the hostile pass: a metric giving its batch mean was summed as if it were
    one sample's value, so val/err was off by the batch size."""
    ws = sqlite_workspace
    body = (
        "    def metrics(self, p, d):\n"
        "        return {\n"
        "            'err': lambda o, y: (o.argmax(1) != y).float(),\n"
        "            'err_mean': lambda o, y: (o.argmax(1) != y).float().mean(),\n"
        "        }\n"
    )
    outcome = hone.train.train(
        _recipe(tmp_path, body),
        digits(ws),
        params={"epochs": 1, "best_metric": "val/err_mean"},
        workspace=ws,
    )
    assert outcome.status is RunStatus.FINISHED, outcome.error
    m = outcome.metrics
    assert m["val/err"] == pytest.approx(m["val/err_mean"], abs=1e-6)  # (float32 means)
    assert m["val/err"] == pytest.approx(1 - m["val/acc"], abs=1e-9)


def test_reduce_on_plateau_steps_once_an_epoch_on_the_best_metric(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    ws = sqlite_workspace
    body = (
        "    def scheduler(self, p, o, t):\n"
        "        return torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode='max', "
        "factor=0.5, patience=0, threshold=10)\n"
    )
    outcome = hone.train.train(
        _recipe(tmp_path, body),
        digits(ws),
        params={"epochs": 3, "best_metric": "val/acc"},
        workspace=ws,
    )
    assert outcome.status is RunStatus.FINISHED, outcome.error
    lrs = [m.value for m in metric_history(database_for(ws.store_uri), outcome.run_id, "lr")]
    # The first epoch sets the best; threshold=10: no later one beats it, each halves lr.
    assert lrs == pytest.approx([0.003, 0.0015, 0.00075])


def test_odd_settings_are_said_before_launch(
    sqlite_workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    ref = digits(sqlite_workspace)
    with caplog.at_level(logging.WARNING, logger="hone.train"):
        prepare(
            "builtin:mlp",
            ref,
            {"val_split": "train", "warmup_steps": 10**6, "epochs": 1},
            workspace=sqlite_workspace,
        )
    text = caplog.text
    assert "val_split is the training split" in text
    assert "warmup_steps=1000000 is not below the job's 23 steps" in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "    def loss(self, p, d): return lambda o, y: 'x'\n",
            "its loss gave str for a batch of 2",
        ),
        (
            "    def loss(self, p, d):\n"
            "        ce = torch.nn.functional.cross_entropy\n"
            "        return lambda o, y: ce(o, y, reduction='none')\n",
            r"its loss gave \(2,\) for a batch of 2; it must give one number",
        ),
        (
            "    def loss(self, p, d): return lambda o, y: torch.tensor(1.0)\n",
            "no gradient flows back from",
        ),
        (
            "    def loss(self, p, d): return lambda o, y: 1 / 0\n",
            "its loss failed on a batch of 2 .*ZeroDivisionError",
        ),
        ("    def model(self, p, d): return torch.nn.Flatten()\n", "has no parameters to train"),
    ],
)
def test_a_recipes_own_loss_is_tried_before_launch(
    sqlite_workspace: Workspace, tmp_path: Path, body: str, message: str
) -> None:
    """Found by the hostile pass: a loss giving text, a vector or a constant created a run
    that then failed; a model without parameters was a raw ValueError."""
    ref = digits(sqlite_workspace)
    with pytest.raises(ValidationError, match=message):
        prepare(_recipe(tmp_path, body), ref, {}, workspace=sqlite_workspace)


def test_more_bad_settings_are_refused_before_launch(
    sqlite_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = sqlite_workspace
    ref = digits(ws)
    with pytest.raises(ValidationError, match="lr='1e-3_0': lr is a number"):
        prepare("builtin:mlp", ref, {"lr": "1e-3_0"}, workspace=ws)
    with pytest.raises(ValidationError, match="too large a number for lr"):
        prepare("builtin:mlp", ref, {"lr": 10**400}, workspace=ws, where="params")
    other = hone.init(tmp_path / "other")
    elsewhere = hone.data.get(digits(other), workspace=other)
    with pytest.raises(ValidationError, match="belongs to another workspace"):
        hone.train.train("builtin:mlp", elsewhere, workspace=ws)
    monkeypatch.setenv("HONE_SPLIT_CACHE_BYTES", "lots")
    with pytest.raises(ValidationError, match="HONE_SPLIT_CACHE_BYTES='lots' is not a size"):
        prepare("builtin:mlp", ref, {}, workspace=ws)


def test_sys_exit_in_a_recipe_while_training_fails_the_run_saying_so(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    """Found by the hostile pass: sys.exit(0) in a loss during one-process training ended
    hone train with status 0 and no word, the run failed without an error."""
    ws = sqlite_workspace
    body = (
        "    def loss(self, p, d):\n"
        "        calls = [0]\n"
        "        def fn(o, y):\n"
        "            calls[0] += 1\n"
        "            if calls[0] == 5:\n"
        "                sys.exit(0)\n"
        "            return torch.nn.functional.cross_entropy(o, y)\n"
        "        return fn\n"
    )
    outcome = hone.train.train(_recipe(tmp_path, body), digits(ws), workspace=ws)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None and "SystemExit: 0" in outcome.error
    run = get_run(database_for(ws.store_uri), outcome.run_id)
    assert "SystemExit: 0" in run.tags["hone.error"]


def test_a_store_failure_while_training_is_recorded_on_the_run(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the hostile pass: a blob store that stopped taking writes failed the run
    with no hone.error, so `hone runs show` could not say why."""
    import hone.train.checkpoint as checkpoint_module
    from hone.errors import BlobError

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise BlobError("cannot write to the blob store at /x: Read-only file system")

    monkeypatch.setattr(checkpoint_module, "record_checkpoint", refuse)
    ws = sqlite_workspace
    with pytest.raises(BlobError):
        hone.train.train("builtin:mlp", digits(ws), params={"epochs": 2}, workspace=ws)
    db = database_for(ws.store_uri)
    run = next(iter(hone.search_runs(workspace=ws)))
    assert get_run(db, run.id).status is RunStatus.FAILED
    assert "Read-only file system" in get_run(db, run.id).tags["hone.error"]
