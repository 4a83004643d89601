"""The run a process is logging to: every call appends to the journal and returns.

``log_metric`` is the hot path: a validated key is cached with its encoded bytes, the frame
is packed by hand and copied into the journal's memory map (the durable copy), and the
same point is queued in memory as the row the store will take. The store sees it when the
flusher next runs or when the run ends, whichever is first.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from hone.config import Workspace
from hone.errors import ConflictError, HoneError, ValidationError
from hone.ids import new_id
from hone.tracking.entities import Run, RunStatus
from hone.tracking.environment import capture_environment
from hone.tracking.flusher import SegmentCursor, flush_segment
from hone.tracking.queries import get_run
from hone.tracking.records import Event, encode_event, encode_metric
from hone.tracking.sink import Batch, PointRow
from hone.tracking.tracker import Tracker, close_retired_segments, get_tracker
from hone.tracking.validation import (
    check_key,
    check_metric_value,
    check_name,
    check_step,
    check_text_value,
)

__all__ = ["ActiveRun", "active_run", "start_run"]

log = logging.getLogger("hone.tracking")

_MIN_STEP, _MAX_STEP = -(2**63), 2**63 - 1
_stack: list[ActiveRun] = []
_stack_lock = threading.Lock()
_crashed = False


class ActiveRun:
    """A run this process is writing to. Use as a context manager, or call ``end()``."""

    def __init__(
        self, tracker: Tracker, run_id: str, experiment: str, name: str, *, owner: bool
    ) -> None:
        self.id = run_id
        self.experiment = experiment
        self.name = name
        self._tracker = tracker
        self._owner = owner
        self._writer = tracker.flusher.writer(tracker.workspace.journal_dir)
        self.lock = threading.Lock()
        # Records not yet in the store: events in order, and points queued per key beside
        # the key's encoded bytes (one dict lookup per point serves both).
        self._events: list[Event] = []
        self._keys: dict[str, tuple[bytes, list[PointRow]]] = {}
        # Set when an in-memory flush failed: the journal file is replayed at the end.
        self._replay_journal = False
        self._next_step: dict[str, int] = {}
        self._params: dict[str, str] = {}
        self._status: RunStatus | None = None
        self._write = self._writer.write

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} {self.experiment}/{self.name}>"

    # Logging -------------------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: float | None = None
    ) -> None:
        """Record ``value`` for ``key`` at ``step`` (the key's next step if omitted).

        Keyed by (run, key, step): logging the same step again replaces the value.
        NaN and ±inf are stored faithfully.
        """
        entry = self._keys.get(key)
        if entry is None:
            entry = self._admit_key(key)
        if type(value) is not float:
            value = check_metric_value(key, value)
        if step is None:
            step = self._next_step.get(key, 0)
        elif type(step) is not int or not _MIN_STEP <= step <= _MAX_STEP:
            step = check_step(key, step)
        self._next_step[key] = step + 1
        ts = time.time() if timestamp is None else timestamp
        self._write(encode_metric(entry[0], value, step, ts))
        entry[1].append((step, value if value == value else None, ts))

    def log_metrics(
        self, values: Mapping[str, float], step: int | None = None, timestamp: float | None = None
    ) -> None:
        ts = time.time() if timestamp is None else timestamp
        for key, value in values.items():
            self.log_metric(key, value, step, ts)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, values: Mapping[str, Any]) -> None:
        """Params are fixed once logged: a different value for the same key is an error."""
        self._record_params(checked_values(values, "param"))

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, values: Mapping[str, Any]) -> None:
        self._record_tags(checked_values(values, "tag"))

    def _record_params(self, checked: dict[str, str]) -> None:
        _check_param_conflicts(self.id, self._params, checked)
        self._params.update(checked)
        self._event("params", {"values": checked})

    def _record_tags(self, checked: dict[str, str]) -> None:
        self._event("tags", {"values": checked})

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> list[str]:
        """Store a file (or every file under a folder) as the run's artifact(s).

        Returns the artifact paths recorded. The bytes go to the blob store, deduplicated
        by digest; the journal records the path → digest mapping.
        """
        source = Path(path)
        if not source.exists():
            raise ValidationError(f"cannot log artifact {source}: no such file or folder")
        base = name or source.name
        if source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.is_file())
            pairs = [(p, f"{base}/{p.relative_to(source).as_posix()}") for p in files]
        else:
            pairs = [(source, base)]
        recorded = []
        for file, artifact_path in pairs:
            digest = self._tracker.blobs.put_file(file)
            self._artifact(artifact_path, digest, file.stat().st_size)
            recorded.append(artifact_path)
        return recorded

    def log_input(self, version: Any, split: str | None = None) -> None:
        """Record that this run read a dataset version (``hone.data`` loaders do this for
        you). ``version`` is a ``hone.data.DatasetVersion`` (or anything with ``id`` and
        ``name``)."""
        version_id, dataset = getattr(version, "id", None), getattr(version, "name", None)
        if not isinstance(version_id, str) or not isinstance(dataset, str):
            raise ValidationError(
                f"log_input takes a dataset version (hone.data.get(...)), got {version!r}"
            )
        self._event("input", {"version_id": version_id, "dataset": dataset, "split": split})

    def log_text(self, text: str, name: str) -> str:
        """Store ``text`` as an artifact named ``name``."""
        data = text.encode()
        self._artifact(name, self._tracker.blobs.put_bytes(data), len(data))
        return name

    # Lifecycle -------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._status is not None

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End the run and drain its journal into the store.

        If the store cannot be reached the run still ends: its journal stays on disk and
        ``hone sync`` (or any later hone command) replays it.
        """
        if self.ended:
            return
        final = RunStatus(status)
        if self._owner:
            self._event("end", {"status": final.value})
        self._status = final
        # From here on the segment may be recycled for another run: never write to it.
        self._write = self._refuse
        self._writer.seal()
        self._tracker.flusher.unregister(self)
        with _stack_lock:
            if self in _stack:
                _stack.remove(self)
        drained = False
        try:
            drained = self._drain()
        finally:
            if drained:
                self._tracker.flusher.retire(self._writer)
            else:
                self._writer.close()

    def flush(self) -> None:
        """Write pending records to the store now (callers hold ``self.lock``).

        Records are taken with ``del queue[:n]``, atomic under the GIL, so points logged
        meanwhile stay queued. On failure the taken records are dropped from memory, not
        lost: they are in the journal, which the run's end (or ``hone sync``) replays.
        """
        batch = Batch(self.id)
        events = self._events
        taken = len(events)
        for event in events[:taken]:
            batch.add_event(event)
        del events[:taken]
        for key, (_, rows) in list(self._keys.items()):
            count = len(rows)
            if count:
                batch.metrics[key] = rows[:count]
                del rows[:count]
        if not len(batch):
            return
        try:
            self._tracker.sink.apply(batch)
        except BaseException:
            self._replay_journal = True
            raise

    def fetch(self) -> Run:
        """This run as the store now has it (flushing pending records first)."""
        with self.lock:
            self.flush()
        return get_run(self._tracker.db, self.id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED)
        else:
            self.end(RunStatus.FAILED)

    # Internals -------------------------------------------------------------------------

    def _refuse(self, frame: bytes) -> None:
        raise ValidationError(f"run {self.id} has ended; start or resume a run to log")

    def _admit_key(self, key: str) -> tuple[bytes, list[PointRow]]:
        entry: tuple[bytes, list[PointRow]] = (check_key(key, "metric").encode(), [])
        self._keys[key] = entry
        return entry

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        payload = {"time": time.time(), **data}
        self._write(encode_event(kind, payload))
        self._events.append(Event(kind, payload))

    def _artifact(self, path: str, digest: str, size: int) -> None:
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise ValidationError(f"artifact path {path!r} must be relative, without '..'")
        self._event("artifact", {"path": path, "digest": digest, "size": size})

    def _drain(self) -> bool:
        """Flush what is pending; True once everything in the segment is in the store."""
        try:
            with self.lock:
                self.flush()
                if self._replay_journal:
                    flush_segment(SegmentCursor(self.id, self._writer.path), self._tracker.sink)
        except (HoneError, OSError) as exc:
            log.warning(
                "hone: run %s ended but could not reach the store (%s); its journal "
                "%s is kept: run `hone sync` when the store is back",
                self.id,
                exc,
                self._writer.path,
            )
            return False
        return True


def start_run(
    experiment: str = "default",
    name: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: str | ActiveRun | None = None,
    run_id: str | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> ActiveRun:
    """Start a run (or continue ``run_id``) and make it the active run of this process.

    A run started while another is active becomes its child unless ``parent`` says
    otherwise. Continuing a run that a dead process left replays that process's journal
    first; continuing one another live process is writing to attaches to it.
    """
    # Everything is checked before the run's first record: bad input leaves no run behind.
    checked_params = checked_values(params or {}, "param")
    checked_tags = checked_values(tags or {}, "tag")
    ws = workspace if isinstance(workspace, Workspace) else Workspace.discover(workspace)
    tracker = get_tracker(ws)
    _install_hooks()
    if run_id is not None:
        run = _continue(tracker, run_id, checked_params)
    else:
        parent_id = parent.id if isinstance(parent, ActiveRun) else parent
        if parent_id is None:
            current = active_run()
            parent_id = current.id if current else None
        experiment = check_name(experiment, "experiment")
        if name is not None:
            check_name(name, "run")
        run = _create(tracker, experiment, name, parent_id)
    if checked_params:
        run._record_params(checked_params)
    if checked_tags:
        run._record_tags(checked_tags)
    tracker.flusher.register(run)
    with _stack_lock:
        _stack.append(run)
    return run


def _create(
    tracker: Tracker, experiment: str, name: str | None, parent_id: str | None
) -> ActiveRun:
    run_id = new_id()
    run_name = check_name(name, "run") if name is not None else f"run-{run_id[:8]}"
    env = capture_environment()
    run = ActiveRun(tracker, run_id, experiment, run_name, owner=True)
    run._event(
        "start",
        {
            "run_id": run_id,
            "experiment": experiment,
            "name": run_name,
            "parent_run_id": parent_id,
            "git_commit": env.git.commit if env.git else None,
            "git_dirty": env.git.dirty if env.git else None,
            "host": env.host,
            "user": env.user,
            "source": env.source,
            "environment": env.info_json,
        },
    )
    if env.git is not None and env.git.dirty and env.git.diff:
        try:
            run.log_text(env.git.diff.decode(errors="replace"), "git.diff")
        except HoneError as exc:
            log.warning("hone: could not store the git diff of run %s: %s", run_id, exc)
    return run


def _continue(tracker: Tracker, run_id: str, params: dict[str, str]) -> ActiveRun:
    tracker.sync(run_id=run_id)
    existing = get_run(tracker.db, run_id)
    _check_param_conflicts(existing.id, existing.params, params)
    owner = existing.status != RunStatus.RUNNING
    run = ActiveRun(tracker, existing.id, existing.experiment, existing.name, owner=owner)
    run._params.update(existing.params)
    for key, metric in existing.metrics.items():
        run._next_step[key] = metric.step + 1
    run._event("resume" if owner else "attach", {"run_id": existing.id})
    return run


def checked_values(values: Mapping[str, Any], kind: str) -> dict[str, str]:
    """Params or tags as the journal takes them: valid keys, values as text."""
    return {check_key(k, kind): check_text_value(k, v, kind) for k, v in values.items()}


def _check_param_conflicts(run_id: str, old: Mapping[str, str], new: Mapping[str, str]) -> None:
    for key, text in new.items():
        previous = old.get(key)
        if previous is not None and previous != text:
            raise ConflictError(
                f"param {key!r} of run {run_id} is already {previous!r}; params are fixed "
                f"once logged (got {text!r}): log a tag or metric for values that change"
            )


def active_run() -> ActiveRun | None:
    """The innermost run this process started and has not ended."""
    with _stack_lock:
        return _stack[-1] if _stack else None


_hooks_installed = False


def _install_hooks() -> None:
    """End runs left open at exit: failed after an uncaught exception, else finished."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        global _crashed
        _crashed = True
        previous(exc_type, exc, tb)

    sys.excepthook = hook
    atexit.register(_end_open_runs)


def _end_open_runs() -> None:
    while (run := active_run()) is not None:
        run.end(RunStatus.FAILED if _crashed else RunStatus.FINISHED)
    close_retired_segments()
