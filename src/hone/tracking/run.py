"""The run a process is logging to: every call appends to the journal and returns.

``log_metric`` is the hot path: a validated key is cached with its encoded bytes, the frame
is packed by hand and copied into the journal's memory map (the durable copy), and the
same point is queued in memory as the row the store will take. The store sees it when the
flusher next runs or when the run ends, whichever is first.

Memory is bounded: once ``QUEUE_LIMIT`` bytes of journal wait in memory, further records
go to the journal only (they are already durable there) and the flusher is woken; its
next flush takes the queue and reads the spilled part back from the journal. A flush from
memory that fails does the same: everything from the start of the failed part on is read
back from the journal next time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from hone.errors import (
    DiskFullError,
    HoneError,
    StoreUnavailableError,
    ValidationError,
)
from hone.tracking.active import active_run, forget
from hone.tracking.applier import apply_range
from hone.tracking.batch import Batch
from hone.tracking.entities import Run, RunStatus
from hone.tracking.points import POINT, Points
from hone.tracking.quarantine import Quarantined
from hone.tracking.queries import get_run
from hone.tracking.records import HEADER, Event, encode_event
from hone.tracking.tracker import Tracker
from hone.tracking.validation import (
    artifact_files,
    check_artifact_path,
    check_end_status,
    check_key,
    check_mapping,
    check_metric_value,
    check_param_conflicts,
    check_step,
    check_text,
    check_timestamp,
    checked_values,
    split_for_journal,
)

# active_run is re-exported for callers that import it from here.
__all__ = ["QUEUE_LIMIT", "ActiveRun", "active_run"]

log = logging.getLogger("hone.tracking")

#: Journal bytes a run keeps queued in memory before it spills: ~450,000 points, held as
#: packed 24-byte points (~10 MiB); the flusher is woken when it is reached.
QUEUE_LIMIT = 16 << 20
_MIN_STEP, _MAX_STEP = -(2**63), 2**63 - 1
_pack_point = POINT.pack
_pack_header = HEADER.pack
_crc32 = zlib.crc32
_KEEP_QUARANTINED = 1000


class ActiveRun:
    """A run this process is writing to. Use as a context manager, or call ``end()``."""

    def __init__(
        self,
        tracker: Tracker,
        run_id: str,
        experiment: str,
        name: str,
        *,
        owner: bool,
        clock: float = 0.0,
    ) -> None:
        self.id = run_id
        self.experiment = experiment
        self.name = name
        self._tracker = tracker
        self._owner = owner
        self._writer = tracker.flusher.writer(tracker.workspace.journal_dir)
        #: One flush at a time (the flusher thread, or the run's end).
        self.lock = threading.Lock()
        # Appending to the journal and queueing in memory happen together, under this.
        self._wlock = threading.Lock()
        self._end_lock = threading.Lock()
        self._inherited = False  # by a forked child, from the process that started it
        # Records not yet taken by a flush: events in order, and points queued per key
        # beside the key's encoded bytes (one dict lookup per point serves both).
        self._events: list[Event] = []
        self._keys: dict[str, tuple[bytes, bytearray]] = {}
        # Journal offsets: everything before _base has been taken by a flush; from
        # _spill_at on (if set), records are in the journal only.
        self._base = 0
        self._spill_at: int | None = None
        # Event times never go backwards, and never before what the store already held.
        self._clock = clock
        self._next_step: dict[str, int] = {}
        self._params: dict[str, str] = {}
        self._status: RunStatus | None = None
        self._write = self._writer.write
        #: Records the store refused and set aside (see ``hone runs show``).
        self.quarantined: list[Quarantined] = []

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} {self.experiment}/{self.name}>"

    # Logging -------------------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: float | None = None
    ) -> None:
        """Record ``value`` for ``key`` at ``step`` (the key's next step if omitted).

        Keyed by (run, key, step): logging the same step again replaces the value (the
        point with the newer timestamp wins). NaN and ±inf are stored faithfully.
        """
        try:  # (self._entry, inlined: this is the hot path)
            entry = self._keys.get(key)
        except TypeError:  # an unhashable key: _admit_key says what is wrong with it
            entry = None
        if entry is None:
            entry = self._admit_key(key)
        if type(value) is not float:
            value = check_metric_value(key, value)
        if step is not None and (type(step) is not int or not _MIN_STEP <= step <= _MAX_STEP):
            step = check_step(key, step)
        ts = time.time() if timestamp is None else check_timestamp(key, timestamp)
        key_bytes, queued = entry
        with self._wlock:
            # The step is chosen and advanced under the lock: threads logging one key
            # without steps get distinct steps.
            at = self._next_step.get(key, 0) if step is None else step
            if at > _MAX_STEP:
                raise ValidationError(f"metric {key!r}: the next step does not fit in 64 bits")
            # The packed point is both the frame's body and what the memory queue keeps.
            point = _pack_point(value, at, ts)
            payload = b"M" + point + key_bytes
            end = self._write(_pack_header(len(payload), _crc32(payload)) + payload)
            self._next_step[key] = at + 1
            if self._spill_at is None:
                queued.extend(point)
                if end - self._base > QUEUE_LIMIT:
                    self._spill()

    def log_metrics(
        self, values: Mapping[str, float], step: int | None = None, timestamp: float | None = None
    ) -> None:
        """Several metrics at one step: the whole call is checked, then journaled at once
        (all of it, or none of it if the disk is full)."""
        check_mapping(values, "metric")
        ts = time.time() if timestamp is None else check_timestamp("(all)", timestamp)
        if step is not None:
            step = check_step("(all)", step)
        checked = []
        for key, value in values.items():
            entry = self._entry(key)
            number = value if type(value) is float else check_metric_value(key, value)
            checked.append((key, entry, number))
        with self._wlock:
            frames, steps, points = [], [], []
            for key, (key_bytes, _), number in checked:
                at = self._next_step.get(key, 0) if step is None else step
                if at > _MAX_STEP:
                    raise ValidationError(f"metric {key!r}: the next step does not fit in 64 bits")
                point = _pack_point(number, at, ts)
                payload = b"M" + point + key_bytes
                frames.append(_pack_header(len(payload), _crc32(payload)) + payload)
                steps.append(at)
                points.append(point)
            end = self._write(b"".join(frames))
            for (key, (_, queued), _), at, point in zip(checked, steps, points, strict=True):
                self._next_step[key] = at + 1
                if self._spill_at is None:
                    queued.extend(point)
            if self._spill_at is None and end - self._base > QUEUE_LIMIT:
                self._spill()

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({check_key(key, "param"): value})

    def log_params(self, values: Mapping[str, Any]) -> None:
        """Params are fixed once logged: a different value for the same key is an error."""
        self._record_params(checked_values(values, "param"))

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({check_key(key, "tag"): value})

    def set_tags(self, values: Mapping[str, Any]) -> None:
        """Tags may change; the newest value wins."""
        self._record_tags(checked_values(values, "tag"))

    def _record_params(self, checked: dict[str, str], *, claim: bool = True) -> None:
        """Params are claimed in the store as they are logged (one round trip; any other
        process writing this run then sees them), except those a new run starts with,
        which reach the store with the run itself."""
        check_param_conflicts(self.id, self._params, checked)
        if claim and checked:
            self._claim_params(checked)
        self._params.update(checked)
        for part in split_for_journal(checked):
            self._event("params", {"values": part})

    def _claim_params(self, checked: dict[str, str]) -> None:
        """Another process may write this run too: the store decides which value is first.
        If it cannot be reached, the journal carries the params (and the store refuses a
        conflicting one when it gets them)."""
        try:
            conflicts = self._tracker.sink.claim_params(self.id, checked)
        except StoreUnavailableError as exc:
            log.warning("hone: could not check params of run %s in the store (%s)", self.id, exc)
            return
        if conflicts:
            check_param_conflicts(self.id, conflicts, checked)

    def _record_tags(self, checked: dict[str, str]) -> None:
        for part in split_for_journal(checked):
            self._event("tags", {"values": part})

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> list[str]:
        """Store a file (or every file under a folder) as the run's artifact(s).

        Returns the artifact paths recorded. The bytes go to the blob store, deduplicated
        by digest; the journal records the path → digest mapping. Every path is checked
        before any byte is stored.
        """
        self._refuse_if_ended()
        recorded = []
        for file, artifact_path in artifact_files(path, name):
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
        check_text(version_id, "dataset version id", 64)
        check_text(dataset, "dataset name", 250)
        if split is not None:
            if not isinstance(split, str):
                raise ValidationError(f"split must be a split name, got {split!r}")
            check_text(split, "split name", 250)
        self._event("input", {"version_id": version_id, "dataset": dataset, "split": split})

    def log_text(self, text: str, name: str) -> str:
        """Store ``text`` as an artifact named ``name``."""
        self._refuse_if_ended()
        if not isinstance(text, str):
            raise ValidationError(f"log_text takes text, got {type(text).__name__}")
        check_artifact_path(name)
        try:  # bytes that were not UTF-8 (surrogate escapes) are stored as they were
            data = text.encode(errors="surrogateescape")
        except UnicodeEncodeError as exc:
            raise ValidationError(
                f"log_text: the text is not valid Unicode ({exc.reason} at {exc.start})"
            ) from None
        self._artifact(name, self._tracker.blobs.put_bytes(data), len(data))
        return name

    # Lifecycle -------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._status is not None

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End the run and drain its journal into the store.

        If the store cannot be reached (within its time bound) the run still ends: its
        journal stays on disk and ``hone sync`` (or any later hone command) replays it.
        """
        final = check_end_status(status)
        with self._end_lock:  # ending from several threads at once ends it once
            if self._status is not None:
                return
            self._status = final
        unjournaled: dict[str, Any] | None = None
        if self._owner:
            try:
                self._event("end", {"status": final.value}, final=True)
            except DiskFullError as exc:  # the run still ends: its status goes straight in
                log.warning("hone: run %s: %s", self.id, exc)
                unjournaled = {"kind": "end", "status": final.value, "time": time.time()}
        with self._wlock:
            # From here on the segment may be recycled for another run: never write to it.
            self._write = self._refuse
            self._writer.seal()
        self._tracker.flusher.unregister(self)
        forget(self)
        drained = False
        try:
            drained = self._drain()
            if drained and unjournaled is not None:
                drained = self._apply_directly(Batch(self.id, statuses=[unjournaled]))
        finally:
            if drained:
                self._tracker.flusher.retire(self._writer)
            else:
                self._writer.close()
            self._tracker.sink.forget(self.id)
        if self.quarantined:
            log.warning(
                "hone: run %s ended; %d of its records were refused by the store and set "
                "aside: `hone runs show %s` lists them",
                self.id,
                len(self.quarantined),
                self.id,
            )

    def flush(self) -> None:
        """Write pending records to the store now (callers hold ``self.lock``).

        Under the write lock the memory queue is taken and the journal offset it ends at
        noted; records logged meanwhile stay for the next flush, and queue in memory again
        even if the queue had spilled. The part that spilled is read back from the journal.
        On failure nothing is lost: from the start of what was taken, records are read
        back from the journal next time (the run's end, or ``hone sync`` after the
        process is gone).
        """
        with self._wlock:
            taken_to = self._writer.offset
            base, spill_at = self._base, self._spill_at
            events, self._events = self._events, []
            batch = Batch(self.id)
            for key, (_, queued) in list(self._keys.items()):
                if queued:
                    batch.metrics[key] = Points(queued)
                    queued.clear()
            self._base = taken_to
            self._spill_at = None
        for event in events:
            batch.add_event(event)
        try:
            self._note(self._tracker.sink.apply(batch))
            if spill_at is not None and taken_to > spill_at:
                applied = apply_range(
                    self._writer.fd,
                    spill_at,
                    taken_to,
                    self.id,
                    self._tracker.sink,
                    segment=self._writer.path.name,
                )
                self._note(applied.quarantined)
        except BaseException:
            with self._wlock:
                self._base = self._spill_at = base
                self._events.clear()
                for _, queued in self._keys.values():
                    queued.clear()
            raise

    def fetch(self) -> Run:
        """This run as the store now has it (flushing pending records first)."""
        if not self.ended:
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

    def inherited_by_fork(self) -> None:
        """In a forked child: this run is the parent's. Logging to it here would write into
        the parent's journal behind its back; refuse instead (and never end it)."""
        self._wlock = threading.Lock()
        self.lock = threading.Lock()
        self._end_lock = threading.Lock()
        self._inherited = True
        self._write = self._refuse
        self._status = self._status or RunStatus.KILLED  # end() is a no-op in the child

    def _refuse_if_ended(self) -> None:
        if self.ended:
            self._refuse(b"")

    def _refuse(self, frame: bytes) -> int:
        if self._inherited:
            raise ValidationError(
                f"run {self.id} belongs to the process that started it, not to this forked "
                f"child: call hone.start_run(run_id={self.id!r}) in the child to log to it"
            )
        raise ValidationError(f"run {self.id} has ended; start or resume a run to log")

    def _spill(self) -> None:
        """The memory queue is full: records from the journal's end on stay there only,
        until the next flush takes the queue (woken now rather than at its next tick)."""
        self._spill_at = self._writer.offset
        self._tracker.flusher.wake()

    def _entry(self, key: str) -> tuple[bytes, bytearray]:
        """A metric key's encoded bytes and memory queue."""
        try:
            entry = self._keys.get(key)
        except TypeError:
            entry = None
        return entry if entry is not None else self._admit_key(key)

    def _admit_key(self, key: str) -> tuple[bytes, bytearray]:
        # setdefault is atomic: two threads admitting one key share one queue.
        return self._keys.setdefault(key, (check_key(key, "metric").encode(), bytearray()))

    def _event(self, kind: str, data: dict[str, Any], *, final: bool = False) -> None:
        with self._wlock:
            now = max(time.time(), self._clock + 1e-6)
            self._clock = now
            payload = {"time": now, **data}
            frame = encode_event(kind, payload)
            # The end record may use the room kept for it: a full disk cannot stop it.
            end = self._writer.write_final(frame) if final else self._write(frame)
            if self._spill_at is None:
                self._events.append(Event(kind, payload))
                if end - self._base > QUEUE_LIMIT:
                    self._spill()

    def _artifact(self, path: str, digest: str, size: int) -> None:
        self._event("artifact", {"path": path, "digest": digest, "size": size})

    def _note(self, set_aside: list[Quarantined]) -> None:
        for item in set_aside:
            if len(self.quarantined) < _KEEP_QUARANTINED:
                self.quarantined.append(item)
            if len(self.quarantined) <= 5:
                log.warning(
                    "hone: run %s: the store refused a %s record (%s); it is set aside, "
                    "see `hone runs show %s`",
                    self.id,
                    item.kind,
                    item.reason,
                    self.id,
                )

    def _apply_directly(self, batch: Batch) -> bool:
        try:
            self._note(self._tracker.sink.apply(batch))
        except HoneError as exc:
            log.warning("hone: run %s: could not record its end (%s)", self.id, exc)
            return False
        return True

    def _drain(self) -> bool:
        """Flush what is pending; True once everything in the segment is in the store."""
        try:
            with self.lock:
                self.flush()
        except Exception as exc:
            log.warning(
                "hone: run %s ended but its records could not reach the store (%s); its "
                "journal %s is kept: run `hone sync` when the store is back",
                self.id,
                exc,
                self._writer.path,
                exc_info=None if isinstance(exc, (HoneError, OSError)) else exc,
            )
            return False
        return True
