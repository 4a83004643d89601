"""Checkpoints in the parameter library: weights as safetensors, the rest of the training
state as a tensor file read with ``torch.load(weights_only=True)`` (no arbitrary objects
are ever unpickled), both as blobs, indexed in the store by run and step.

``save_checkpoint`` and ``load_latest`` serve the standard loop and a user's own loop
alike. Only the job's first process (rank 0) saves; every rank loads.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from hone.blobs import BlobStore, open_blob_store
from hone.errors import NotFoundError, ValidationError
from hone.store.database import Database, database_for
from hone.tracking.checkpoints import Checkpoint, list_checkpoints, record_checkpoint, retain
from hone.tracking.run import ActiveRun, active_run
from hone.train.state_copy import HostCopies, give_back_pinned_memory, plain

__all__ = ["CheckpointWriter", "Restored", "load_latest", "plain", "save_checkpoint"]

log = logging.getLogger("hone.train")


@dataclass
class Restored:
    """What ``load_latest`` put back, and where training continues."""

    checkpoint: Checkpoint
    step: int
    epoch: int
    batch: int  # batches of ``epoch`` already trained
    extra: dict[str, Any] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)  # newer steps that could not be read


def _stores(run: ActiveRun) -> tuple[Database, BlobStore]:
    workspace = run._tracker.workspace
    return database_for(workspace.store_uri), open_blob_store(workspace.blob_uri)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    inner = getattr(model, "module", None)  # DistributedDataParallel, DataParallel
    return inner if isinstance(inner, torch.nn.Module) else model


def _weights_copy(model: torch.nn.Module, copy: HostCopies) -> dict[str, torch.Tensor]:
    """The model's weights copied to CPU memory of their own: training may go on while
    they are written (tied weights become separate copies: safetensors stores no shared
    memory)."""
    return {name: copy(tensor) for name, tensor in _unwrap(model).state_dict().items()}


def save_checkpoint(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    *,
    step: int,
    epoch: int = 0,
    batch: int = 0,
    metrics: Mapping[str, Any] | None = None,  # numbers: Python, NumPy, or 0-d tensors
    extra: Mapping[str, Any] | None = None,
    run: ActiveRun | None = None,
    keep_last: int = 2,
    keep_best: int = 1,
    best_metric: str = "val/loss",
    best_mode: str = "min",
) -> Checkpoint | None:
    """Save the training state at optimizer ``step`` to the run's parameter library.

    On any rank but 0 of a distributed job this does nothing and returns None. ``extra``
    holds what else a loop needs back (tensors, numbers, text, lists, dicts). Afterwards
    the run keeps its last ``keep_last`` and best ``keep_best`` checkpoints.
    """
    if _rank() != 0:
        return None
    return _snapshot(
        model,
        optimizer,
        scheduler,
        step=step,
        epoch=epoch,
        batch=batch,
        metrics=metrics,
        extra=extra,
        run=run,
        keep_last=keep_last,
        keep_best=keep_best,
        best_metric=best_metric,
        best_mode=best_mode,
    ).write()


class CheckpointWriter:
    """``save_checkpoint`` with the writing off the training thread: the state is copied
    (serialized) when ``save`` is called, then hashed, stored, indexed and pruned on one
    background thread while training goes on. One save at a time: the next waits for the
    previous, and its error (a full disk) is raised there or by ``wait``."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="hone-checkpoint")
        self._pending: Future[Checkpoint] | None = None
        self._closed = False

    def save(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        **options: Any,
    ) -> None:
        """As ``save_checkpoint`` (same arguments), returning at once."""
        if _rank() != 0:
            return
        if self._closed:
            raise ValidationError("CheckpointWriter.save: the writer is closed")
        snapshot = _snapshot(model, optimizer, scheduler, **options)
        self.wait()
        self._pending = self._pool.submit(snapshot.write)

    def wait(self) -> Checkpoint | None:
        """The last save's checkpoint once it is stored; its error if it failed."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def close(self) -> None:
        """Finish what is being written (a checkpoint begun is not thrown away), and give
        back the pinned memory the copies from a GPU were cached in."""
        self._closed = True
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
            give_back_pinned_memory()


@dataclass(frozen=True)
class _Snapshot:
    """A training state taken and checked, ready to be written."""

    run: ActiveRun
    step: int
    epoch: int
    weights: dict[str, torch.Tensor]  # copies of their own (CPU memory)
    state: dict[str, Any]  # checked by plain(), its tensors copies of their own
    scores: dict[str, float]
    keep_last: int
    keep_best: int
    best_metric: str
    best_mode: str
    copies: list[Any]  # CUDA events: the copies from GPUs are done once these are

    def serialize(self) -> tuple[bytes, bytes]:
        """The weights as safetensors and the rest as a tensor file: done where the
        snapshot is written (a writer's thread), not on the training thread."""
        from safetensors.torch import save

        for event in self.copies:
            event.synchronize()
        buffer = io.BytesIO()
        torch.save(self.state, buffer)
        return save(self.weights), buffer.getvalue()

    def write(self) -> Checkpoint:
        db, blobs = _stores(self.run)
        parts = self.serialize()
        # repair: an old copy of the same bytes may be damaged; this one must be readable.
        digests = [blobs.put_bytes(data, repair=True) for data in parts]
        saved = record_checkpoint(
            db,
            self.run.id,
            self.step,
            self.epoch,
            digests[0],
            digests[1],
            sum(map(len, parts)),
            self.scores,
        )
        for digest, data in zip(digests, parts, strict=True):
            # Another run's retention may have collected these bytes between the put and
            # the record (identical content, its own older checkpoint): recorded now, they
            # stay.
            if not blobs.exists(digest):
                blobs.put_bytes(data)
        retain(
            db,
            blobs,
            self.run.id,
            keep_last=self.keep_last,
            keep_best=self.keep_best,
            metric=self.best_metric,
            mode=self.best_mode,
        )
        return saved


def _snapshot(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    *,
    step: int,
    epoch: int = 0,
    batch: int = 0,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    run: ActiveRun | None = None,
    keep_last: int = 2,
    keep_best: int = 1,
    best_metric: str = "val/loss",
    best_mode: str = "min",
) -> _Snapshot:
    """Everything checked, then the state serialized: a copy training may move on from."""
    run = run or active_run()
    if run is None:
        raise ValidationError("save_checkpoint: no active run (start one, or pass run=)")
    for name, value, low in (
        ("step", step, 0),
        ("epoch", epoch, 0),
        ("batch", batch, 0),
        ("keep_last", keep_last, 1),
        ("keep_best", keep_best, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**63:
            raise ValidationError(
                f"save_checkpoint: {name} {value!r}: give an integer of at least {low}"
            )
    if best_mode not in ("min", "max"):
        raise ValidationError(f"save_checkpoint: best_mode {best_mode!r}: give min or max")
    if not isinstance(model, torch.nn.Module):
        raise ValidationError(
            f"save_checkpoint: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ValidationError(
            "save_checkpoint: optimizer must be a torch.optim.Optimizer, got "
            f"{type(optimizer).__name__}"
        )
    if extra is not None and not isinstance(extra, Mapping):
        raise ValidationError(f"save_checkpoint: extra must be a dict, got {type(extra).__name__}")
    scores = _scores(metrics)
    state: dict[str, Any] = {
        "position": {"step": step, "epoch": epoch, "batch": batch},
        "rng": {"torch": torch.get_rng_state()},
        "extra": dict(extra or {}),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = _state_dict_of(scheduler)
    copy = HostCopies()
    for part in ("extra", "scheduler", "optimizer"):
        if part in state:
            state[part] = plain(state[part], part, copy=copy)
    weights = _weights_copy(model, copy)
    return _Snapshot(
        run,
        step,
        epoch,
        weights,
        state,
        scores,
        keep_last,
        keep_best,
        best_metric,
        best_mode,
        copy.done(),
    )


def _state_dict_of(scheduler: Any) -> Any:
    state_dict = getattr(scheduler, "state_dict", None)
    if not callable(state_dict):
        raise ValidationError(
            "save_checkpoint: scheduler must have a state_dict() (a torch.optim.lr_scheduler), "
            f"got {type(scheduler).__name__}"
        )
    return state_dict()


def _scores(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise ValidationError(
            f"save_checkpoint: metrics must be a dict of name to number, got "
            f"{type(metrics).__name__}"
        )
    scores: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise ValidationError(f"save_checkpoint: metric name {key!r} is not a string")
        try:
            scores[key] = float(value.item() if isinstance(value, torch.Tensor) else value)
        except (TypeError, ValueError, RuntimeError):
            raise ValidationError(
                f"save_checkpoint: metric {key!r} is {value!r}, not a number"
            ) from None
    return scores


def load_latest(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    *,
    run: ActiveRun | str | None = None,
    workspace: Any = None,
) -> Restored | None:
    """Put the run's latest readable checkpoint back into ``model`` (and the optimizer and
    scheduler); None when the run has none. A checkpoint whose blobs are missing or corrupt
    (their digest says so) is skipped with a warning, and the one before it is used."""
    if not isinstance(model, torch.nn.Module):
        raise ValidationError(
            f"load_latest: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    run_id, db, blobs = _locate(run, workspace)
    found = list_checkpoints(db, run_id)
    if not found:
        return None
    skipped: list[int] = []
    for checkpoint in reversed(found):
        try:
            weights = blobs.get_bytes(checkpoint.weights)
            state = torch.load(
                io.BytesIO(blobs.get_bytes(checkpoint.state)),
                weights_only=True,
                map_location="cpu",
            )
        except Exception as exc:  # missing, corrupt, or not loadable without unpickling
            log.warning(
                "hone: checkpoint at step %d of run %s cannot be read (%s); trying the one "
                "before it",
                checkpoint.step,
                run_id,
                exc,
            )
            skipped.append(checkpoint.step)
            continue
        _restore(model, optimizer, scheduler, weights, state, checkpoint)
        position = state.get("position", {})
        return Restored(
            checkpoint,
            step=int(position.get("step", checkpoint.step)),
            epoch=int(position.get("epoch", checkpoint.epoch)),
            batch=int(position.get("batch", 0)),
            extra=dict(state.get("extra", {})),
            skipped=skipped,
        )
    raise NotFoundError(  # a restart would meet the same blobs: the job's own fault
        f"none of run {run_id}'s {len(found)} checkpoints can be read (steps "
        f"{', '.join(str(c.step) for c in found)}): their blobs are missing or corrupt, or "
        "their state cannot be loaded without unpickling (see the warnings above)"
    )


def _restore(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any,
    weights: bytes,
    state: dict[str, Any],
    checkpoint: Checkpoint,
) -> None:
    from safetensors.torch import load

    try:
        _unwrap(model).load_state_dict(load(weights))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ValidationError(
            f"the checkpoint at step {checkpoint.step} does not fit this model: {first}"
        ) from exc
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    rng = state.get("rng", {})
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _locate(run: ActiveRun | str | None, workspace: Any) -> tuple[str, Database, BlobStore]:
    if isinstance(run, ActiveRun):
        return (run.id, *_stores(run))
    if run is None:
        current = active_run()
        if current is None:
            raise ValidationError("load_latest: no active run (start one, or pass run=)")
        return (current.id, *_stores(current))
    from hone.tracking.start import wait_for_run, workspace_of
    from hone.tracking.tracker import get_tracker

    if not isinstance(run, str):
        raise ValidationError(f"load_latest: run must be a run id or a run, got {run!r}")
    tracker = get_tracker(workspace_of(workspace).require())
    # A run another process has just started may reach the store a moment later.
    return wait_for_run(tracker, run), tracker.db, open_blob_store(tracker.workspace.blob_uri)


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    return 0
