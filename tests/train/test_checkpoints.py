"""save_checkpoint and load_latest under hostile use: what cannot be loaded back safely,
damaged blobs, and two runs sharing identical bytes while one collects its garbage."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hone
import hone.train
import hone.train.checkpoint as checkpoint_module
from hone.blobs import open_blob_store
from hone.config import Workspace
from hone.errors import ValidationError
from hone.store.database import database_for
from hone.tracking.checkpoints import list_checkpoints, record_checkpoint, retain
from hone.tracking.entities import RunStatus
from hone.tracking.queries import get_run
from hone.train.launch import Topology, launch, prepare
from tests.cli.test_cli import hone_cli
from tests.train.helpers import digits, faulty_recipe


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"extra": {"ema": np.zeros(3)}}, r"extra\['ema'\] is a numpy.ndarray.*torch.from_numpy"),
        ({"extra": {"f": lambda: 1}}, r"extra\['f'\] is a builtins.function"),
        ({"extra": {"deep": [1, {"x": _Opaque()}]}}, r"extra\['deep'\]\[1\]\['x'\] is a"),
        ({"extra": {(1, 2): 3}}, "a key of type tuple"),
        ({"extra": [1, 2]}, "extra must be a dict"),
        ({"optimizer": "adam"}, "optimizer must be a torch.optim.Optimizer, got str"),
        ({"scheduler": 42}, "scheduler must have a state_dict"),
        ({"metrics": {"acc": "high"}}, "metric 'acc' is 'high', not a number"),
        ({"metrics": [0.5]}, "metrics must be a dict"),
        ({"model": None}, "model must be a torch.nn.Module, got NoneType"),
    ],
)
def test_what_cannot_be_loaded_back_is_refused_before_writing(
    sqlite_workspace: Workspace, call: dict[str, Any], message: str
) -> None:
    """Found by the hostile pass: a numpy array in extra was saved, and every later
    load_latest failed with an UnpicklingError traceback."""
    ws = sqlite_workspace
    arguments: dict[str, Any] = {"model": torch.nn.Linear(2, 2), "step": 1, **call}
    model = arguments.pop("model")
    blobs = open_blob_store(ws.blob_uri)
    with hone.start_run("bad", workspace=ws) as run:
        before = set(blobs.digests())  # (the run's git diff, when the tree is dirty)
        with pytest.raises(ValidationError, match=message):
            hone.train.save_checkpoint(model, **arguments)
    assert list_checkpoints(database_for(ws.store_uri), run.id) == []
    assert set(blobs.digests()) == before


def test_numbers_of_any_kind_are_metrics_and_plain_values_come_back(
    sqlite_workspace: Workspace,
) -> None:
    ws = sqlite_workspace
    model = torch.nn.Linear(2, 2)
    extra = {"ema": torch.ones(3), "seen": [1, 2.5, "x", None], "nested": {"k": (True, b"b")}}
    with hone.start_run("ok", workspace=ws) as run:
        saved = hone.train.save_checkpoint(
            model,
            step=3,
            metrics={"a": np.float32(0.5), "b": torch.tensor(2.0), "c": 1},
            extra=extra,
        )
    assert saved is not None and saved.metrics == {"a": 0.5, "b": 2.0, "c": 1.0}
    restored = hone.train.load_latest(torch.nn.Linear(2, 2), run=run.id, workspace=ws)
    assert restored is not None
    assert restored.extra["seen"] == [1, 2.5, "x", None]
    assert restored.extra["nested"] == {"k": (True, b"b")}
    torch.testing.assert_close(restored.extra["ema"], torch.ones(3))


def test_a_state_that_needs_unpickling_is_skipped_for_the_one_before(
    sqlite_workspace: Workspace,
) -> None:
    """A checkpoint written by other means (or an older hone) whose state holds objects
    weights_only refuses: load_latest says so and uses the previous one."""
    ws = sqlite_workspace
    db, blobs = database_for(ws.store_uri), open_blob_store(ws.blob_uri)
    model = torch.nn.Linear(2, 2)
    with hone.start_run("unpickle", workspace=ws) as run:
        first = hone.train.save_checkpoint(model, step=1, keep_last=5)
    assert first is not None
    buffer = io.BytesIO()
    torch.save({"position": {"step": 2}, "extra": {"a": np.zeros(2)}}, buffer)
    state = blobs.put_bytes(buffer.getvalue())
    record_checkpoint(db, run.id, 2, 0, first.weights, state, 1, {})
    restored = hone.train.load_latest(torch.nn.Linear(2, 2), run=run.id, workspace=ws)
    assert restored is not None and restored.step == 1 and restored.skipped == [2]


def test_a_damaged_copy_of_the_same_bytes_is_written_anew(sqlite_workspace: Workspace) -> None:
    """Found by the hostile pass: weights unchanged since a checkpoint whose blob was
    damaged were 'stored' by finding the damaged copy, and the run's final checkpoint could
    never be read."""
    ws = sqlite_workspace
    blobs = open_blob_store(ws.blob_uri)
    model = torch.nn.Linear(4, 2)
    with hone.start_run("repair", workspace=ws) as run:
        first = hone.train.save_checkpoint(model, step=1, keep_last=5)
        assert first is not None
        path = blobs._path(first.weights)  # type: ignore[attr-defined]
        path.chmod(0o644)
        path.write_bytes(b"x" * path.stat().st_size)
        second = hone.train.save_checkpoint(model, step=2, keep_last=5)
    assert second is not None and second.weights == first.weights
    blobs.verify(second.weights)
    restored = hone.train.load_latest(torch.nn.Linear(4, 2), run=run.id, workspace=ws)
    assert restored is not None and restored.step == 2 and restored.skipped == []


def test_another_runs_collection_never_takes_bytes_just_saved(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run A drops its old checkpoint while run B saves identical bytes: B's put finds
    them stored, then A's retention deletes them before B records its checkpoint. B must
    still end with readable blobs (SQLite and PostgreSQL)."""
    ws = workspace
    db, blobs = database_for(ws.store_uri), open_blob_store(ws.blob_uri)
    model = torch.nn.Linear(3, 3)
    with hone.start_run("a", workspace=ws) as run_a:
        old = hone.train.save_checkpoint(model, step=1, keep_last=5)
    assert old is not None
    record_checkpoint(db, run_a.id, 2, 0, old.state, old.state, 1, {})  # A moves on

    def record_after_a_collects(*args: Any, **kwargs: Any) -> Any:
        retain(db, blobs, run_a.id, keep_last=1, keep_best=0, metric="m", mode="min")
        assert not blobs.exists(old.weights)  # the race happened
        return record_checkpoint(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "record_checkpoint", record_after_a_collects)
    with hone.start_run("b", workspace=ws) as run_b:
        saved = hone.train.save_checkpoint(model, step=1, keep_last=5)
    assert saved is not None and saved.weights == old.weights
    blobs.verify(saved.weights)
    restored = hone.train.load_latest(torch.nn.Linear(3, 3), run=run_b.id, workspace=ws)
    assert restored is not None and restored.skipped == []


def test_load_latest_waits_for_a_run_another_process_just_started(
    sqlite_workspace: Workspace,
) -> None:
    """Found by the hostile pass: a worker calling load_latest(run=ID) within the first
    flush of the run's creator got 'no run'."""
    ws = sqlite_workspace
    with hone.start_run("fresh", workspace=ws) as run:
        # Not flushed yet: only this process's journal knows the run.
        assert hone.train.load_latest(torch.nn.Linear(2, 2), run=run.id, workspace=ws) is None


def test_load_latest_refuses_what_is_not_a_model(sqlite_workspace: Workspace) -> None:
    with pytest.raises(ValidationError, match=r"model must be a torch\.nn\.Module, got str"):
        hone.train.load_latest("model", run="0" * 32, workspace=sqlite_workspace)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="run must be a run id or a run, got 5"):
        hone.train.load_latest(torch.nn.Linear(1, 1), run=5, workspace=sqlite_workspace)  # type: ignore[arg-type]


def test_a_resume_with_no_readable_checkpoint_fails_saying_so(
    sqlite_workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found by the hostile pass: the run failed with an empty hone.error and the previous
    attempt's hone.resumed_at_step; `runs checkpoints` listed the lost checkpoints as
    if nothing were wrong."""
    ws = sqlite_workspace
    ref, recipe = digits(ws), faulty_recipe(tmp_path)
    params = {"epochs": 1, "checkpoint_every": 5}
    monkeypatch.setenv("CRASH_AT", "12")
    crashed = launch(prepare(recipe, ref, params, workspace=ws), Topology())
    assert crashed.status is RunStatus.FAILED
    db, blobs = database_for(ws.store_uri), open_blob_store(ws.blob_uri)
    saved = list_checkpoints(db, crashed.run_id)
    assert [c.step for c in saved] == [5, 10]
    monkeypatch.setenv("CRASH_AT", "3")  # the first resume reaches step 13, then crashes
    again = launch(prepare(recipe, ref, params, workspace=ws), Topology(), resume=crashed.run_id)
    assert again.status is RunStatus.FAILED
    assert get_run(db, crashed.run_id).tags["hone.resumed_at_step"] == "10"
    for checkpoint in list_checkpoints(db, crashed.run_id):
        blobs.delete(checkpoint.weights)
    monkeypatch.delenv("CRASH_AT")
    last = launch(prepare(recipe, ref, params, workspace=ws), Topology(), resume=crashed.run_id)
    assert last.status is RunStatus.FAILED and last.error is not None
    assert "checkpoints can be read" in last.error
    run = get_run(db, crashed.run_id)
    assert run.status is RunStatus.FAILED and "checkpoints can be read" in run.tags["hone.error"]
    assert run.tags["hone.resumed_at_step"] == ""
    code, out, _ = hone_cli(capsys, "-w", str(ws.home), "runs", "checkpoints", run.id)
    assert code == 0 and "missing" in out and "lost their blobs" in out
    code, out, _ = hone_cli(capsys, "-w", str(ws.home), "runs", "show", run.id)
    assert "hone.resumed_at_step" not in out  # cleared: nothing to show


def test_the_background_writer_stores_a_copy_and_reports_its_failure(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The standard loop's checkpoints are written while training goes on: what is saved
    is the state at the call, whatever training does next, and a write that fails is
    raised by the next save (or wait), not lost."""
    from hone.errors import DiskFullError
    from hone.train.checkpoint import CheckpointWriter

    ws = sqlite_workspace
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    writer = CheckpointWriter()
    with hone.start_run("bg", workspace=ws) as run:
        at_save = model.weight.detach().clone()
        moment_at_save = optimizer.state[model.weight]["exp_avg"].clone()
        writer.save(model, optimizer, step=1, run=run)
        with torch.no_grad():
            model.weight.add_(5.0)  # training moves on at once, in place
        optimizer.step()  # the optimizer's state too (the gradient is still there)
        saved = writer.wait()
        assert saved is not None and saved.step == 1

        def full(*args: Any, **kwargs: Any) -> Any:
            raise DiskFullError("the disk is full")

        monkeypatch.setattr(checkpoint_module, "record_checkpoint", full)
        writer.save(model, step=2, run=run)  # returns: the failure comes later
        with pytest.raises(DiskFullError):
            writer.save(model, step=3, run=run)
        writer.close()
    fresh = torch.nn.Linear(2, 2)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters())
    restored = hone.train.load_latest(fresh, fresh_optimizer, run=run.id, workspace=ws)
    assert restored is not None and restored.step == 1
    torch.testing.assert_close(fresh.weight, at_save)
    torch.testing.assert_close(fresh_optimizer.state[fresh.weight]["exp_avg"], moment_at_save)
    assert not torch.equal(moment_at_save, optimizer.state[model.weight]["exp_avg"])


def test_numpy_scalars_are_saved_as_numbers_and_what_has_no_safe_form_is_refused(
    sqlite_workspace: Workspace,
) -> None:
    """Found by the hostile pass: an lr from NumPy (np.float64, a float subclass), an
    np.str_ or an IntEnum passed the check, and no checkpoint could ever be loaded."""
    import enum

    class Color(enum.IntEnum):
        RED = 1

    ws = sqlite_workspace
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=np.logspace(-3, -1, 3)[0])
    with hone.start_run("numpy", workspace=ws) as run:
        hone.train.save_checkpoint(
            model, optimizer, step=1, extra={"name": np.str_("x"), "n": np.int64(3)}
        )
        for extra, message in (
            ({"color": Color.RED}, r"extra\['color'\] is a .*Color.*save its \.value"),
            ({"a": np.zeros(2)}, r"numpy.ndarray"),
        ):
            with pytest.raises(ValidationError, match=message):
                hone.train.save_checkpoint(model, step=2, extra=extra)
        loop: list[Any] = []
        loop.append(loop)
        with pytest.raises(ValidationError, match="does it contain itself"):
            hone.train.save_checkpoint(model, step=2, extra={"loop": loop})
    fresh = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.5)
    restored = hone.train.load_latest(torch.nn.Linear(2, 2), fresh, run=run.id, workspace=ws)
    assert restored is not None and restored.step == 1
    assert restored.extra == {"name": "x", "n": 3}
    assert fresh.param_groups[0]["lr"] == pytest.approx(0.001)


def test_a_closed_writer_says_so(sqlite_workspace: Workspace) -> None:
    from hone.train.checkpoint import CheckpointWriter

    writer = CheckpointWriter()
    writer.close()
    with (
        hone.start_run("closed", workspace=sqlite_workspace) as run,
        pytest.raises(ValidationError, match="the writer is closed"),
    ):
        writer.save(torch.nn.Linear(1, 1), step=1, run=run)


def test_sparse_tensors_in_the_state_are_saved_and_come_back(sqlite_workspace: Workspace) -> None:
    """A sparse tensor (an embedding's optimizer state, a mask in ``extra``) is copied as
    it is: a contiguous-format copy refuses its layout."""
    from hone.train.checkpoint import CheckpointWriter

    ws = sqlite_workspace
    model = torch.nn.Linear(2, 2)
    mask = torch.eye(3).to_sparse()
    writer = CheckpointWriter()
    with hone.start_run("sparse", workspace=ws) as run:
        writer.save(model, step=1, run=run, extra={"mask": mask})
        writer.close()
    restored = hone.train.load_latest(torch.nn.Linear(2, 2), run=run.id, workspace=ws)
    assert restored is not None and restored.extra["mask"].is_sparse
    torch.testing.assert_close(restored.extra["mask"].to_dense(), torch.eye(3))
