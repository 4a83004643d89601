"""Turning a source into stored chunks, in bounded memory: two passes.

1. **Read and check** (``_scan``): the source is read once, in parts read at the same
   time where it can be (a large CSV), each batch by a reader thread while the last one
   is counted. Every batch is checked, its statistics merged and its labels counted, and
   the raw batch is spilled to a temporary Arrow file. Nothing is written to the blob
   store or the database in this pass, so bad input anywhere in the source, even in its
   last row, leaves no trace.
2. **Write** (``_write``): the splits are allocated from the totals (the row count, and
   per class counts when stratified: why this cannot be one pass), the spill is read back
   in order (for stratified splits its label column first), and rows get their sample
   ids and splits, are hashed for duplicates and cut into chunks, encoded on a few
   threads as they fill.

Memory is a few batches and chunks (``BATCH_BYTES`` and ``CHUNK_ROWS``), plus 9 bytes a
row during the second pass: 8 for the duplicate hashes (taken from the row-major rows
being written) and 1 for split codes (90 MB for 10 million rows; drawing a class's
permutation takes 8 bytes a row of that class for a moment). Results do not depend on
batch sizes: ids, splits and chunk bytes are those of a one-shot import of the same rows.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hone.blobs import BlobStore
from hone.data.chunks import ChunkWriter
from hone.data.importers import ReadAgain, Source, sample_ids_for
from hone.data.manifest import Chunk
from hone.data.spill import Scratch, Spill
from hone.data.splits import SplitWarning, allocate, codes_by_class, small_class_warning
from hone.data.stats import MAX_CLASSES, FeatureStats, LabelCounts, RowHashes, nonfinite_error
from hone.errors import ConflictError, ValidationError

__all__ = ["Ingested", "Options", "ingest"]

#: How often a source may ask to be read again (each widening of a CSV column's type).
MAX_READS = 64


@dataclass(frozen=True)
class Options:
    """What the caller decided before reading."""

    names: list[str]  # splits, in spec order
    fractions: list[float]
    stratify: bool
    seed: int
    allow_nonfinite: bool
    #: append: the parent's feature names, shape and dtype, and label dtype, to fit
    feature_names: tuple[str, ...] | None = None
    shape: tuple[int, ...] | None = None
    dtype: np.dtype[Any] | None = None
    label_dtype: np.dtype[Any] | None = None
    #: append: how many of these sample ids the parent already holds
    clashes: Callable[[np.ndarray], int] | None = None
    target: str = ""  # append: the parent's reference, for messages
    #: append from arrays: each row's split, as an index into ``names`` (no fractions),
    #: and each row's sample id (else they are minted from the source's digest)
    assigned: np.ndarray | None = None
    sample_ids: np.ndarray | None = None


@dataclass
class Ingested:
    rows: int
    digest: str
    chunks: list[Chunk]
    splits: dict[str, int]  # rows per split, splits with rows only
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    label_dtype: np.dtype[Any] | None
    classes: list[Any] | None  # distinct labels, sorted, if they look like classes
    summary: dict[str, Any]  # rows, splits, nonfinite, duplicates, features…, labels
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Part:
    """One part of the source (see ``Source.parts``): its spill and its statistics."""

    spill: Spill
    stats: FeatureStats | None = None


@dataclass
class _Scan:
    parts: list[_Part]
    rows: int = 0
    shape: tuple[int, ...] | None = None
    dtype: np.dtype[Any] | None = None
    label_dtype: np.dtype[Any] | None = None
    stats: FeatureStats | None = None  # every part's, merged in part order
    hashes: RowHashes = field(default_factory=RowHashes)
    labels: LabelCounts | None = None

    def spilled(self, column: int | None = None) -> Iterator[pa.RecordBatch]:
        for part in self.parts:
            yield from part.spill.batches(column)


def ingest(source: Source, options: Options, blobs: BlobStore) -> Ingested:
    """Read ``source`` whole, check it, and store its rows as chunks (not yet a version)."""
    try:
        with Scratch() as scratch:
            return _ingest(source, options, scratch, blobs)
    finally:
        source.close()


def _ingest(source: Source, options: Options, scratch: Scratch, blobs: BlobStore) -> Ingested:
    scan = _scan(source, options, scratch)
    pa.default_memory_pool().release_unused()  # the first pass's buffers, back to the OS
    digest = source.digest()
    if options.clashes is not None:
        ids = options.sample_ids
        clash = options.clashes(ids if ids is not None else sample_ids_for(digest, scan.rows))
        if clash:
            raise ConflictError(
                f"{clash} of the rows to append are already in {options.target} (the same "
                "source rows were imported or appended before)"
            )
    return _write(source, options, scan, digest, blobs)


def _scan(source: Source, options: Options, scratch: Scratch) -> _Scan:
    for attempt in range(MAX_READS):
        scan: _Scan | None = None
        try:
            parts = source.parts()
            scan = _Scan([_Part(scratch.spill(attempt, i)) for i in range(len(parts))])
            for index, raw in _prefetch(parts):
                _add(source, options, scan, scan.parts[index], raw)
            source.finish()
        except ReadAgain:
            for part in scan.parts if scan is not None else []:
                part.spill.discard()
            continue
        except BaseException:
            for part in scan.parts if scan is not None else []:
                part.spill.discard()  # closed now; the scratch folder goes with the import
            raise
        for part in scan.parts:
            part.spill.close()
        break
    else:
        raise ValidationError(f"{source.text}: column types kept changing; give a cleaner file")
    if not scan.rows:
        raise ValidationError(f"{source.text} holds no rows: a dataset needs at least one")
    assert scan.shape is not None
    scan.stats = FeatureStats(int(np.prod(scan.shape)))
    for part in scan.parts:
        if part.stats is not None:
            scan.stats.merge(part.stats)
    if (scan.stats.nan or scan.stats.inf) and not options.allow_nonfinite:
        raise nonfinite_error(scan.stats, source.feature_names)
    return scan


def _add(source: Source, options: Options, scan: _Scan, part: _Part, raw: pa.RecordBatch) -> None:
    values, labels, dtype, shape = source.scan_values(raw)
    rows = raw.num_rows
    if scan.shape is None:
        _check_fit(source, options, shape)
        scan.shape = shape
        if source.label_name is not None:
            scan.labels = LabelCounts(None if options.stratify else MAX_CLASSES)
    elif shape != scan.shape:  # a source decodes every batch to one shape; guard anyway
        raise ValidationError(f"{source.text}: rows change shape from {scan.shape} to {shape}")
    scan.dtype = dtype if scan.dtype is None else np.result_type(scan.dtype, dtype)
    if options.dtype is not None:
        _check_cast(dtype, options.dtype, f"{source.text}'s features", options.target)
    if labels is not None:
        if options.label_dtype is not None:
            labels = _cast_labels(labels, options.label_dtype, source.text, options.target)
        scan.label_dtype = (
            labels.dtype if scan.label_dtype is None else _join(scan.label_dtype, labels.dtype)
        )
        assert scan.labels is not None
        scan.labels.add(labels)
    if part.stats is None:
        part.stats = FeatureStats(int(np.prod(shape)))
    part.stats.add(values)
    part.spill.write(raw)
    scan.rows += rows


def _check_fit(source: Source, options: Options, shape: tuple[int, ...]) -> None:
    """For append: the new rows must have the parent's width, and labels iff it has."""
    if options.shape is None:
        return
    width, wanted = int(np.prod(shape)), int(np.prod(options.shape))
    if width != wanted:
        raise ValidationError(
            f"{source.text} has {width} feature values per row; {options.target} has {wanted}"
        )
    if (source.label_name is None) != (options.label_dtype is None):
        raise ValidationError(
            f"{source.text} and {options.target} must both have labels, or neither"
        )


def _check_cast(have: np.dtype[Any], want: np.dtype[Any], what: str, target: str) -> None:
    if not np.can_cast(have, want, casting="same_kind"):
        raise ValidationError(f"{what} are {have}, but {target} holds {want}")


def _cast_labels(labels: np.ndarray, want: np.dtype[Any], text: str, target: str) -> np.ndarray:
    """Labels as the parent's dtype, where no information is lost in kind (int → float is
    fine, float → int or text → number is not)."""
    if labels.dtype.kind in "USO" and want.kind in "USO":
        return labels.astype(want if want.kind != "U" else labels.dtype)
    _check_cast(labels.dtype, want, f"{text}'s labels", target)
    return labels.astype(want, casting="same_kind")


def _join(a: np.dtype[Any], b: np.dtype[Any]) -> np.dtype[Any]:
    if a.kind == "O" or b.kind == "O":
        return np.dtype(object)
    return np.result_type(a, b)


def _write(
    source: Source, options: Options, scan: _Scan, digest: str, blobs: BlobStore
) -> Ingested:
    assert scan.shape is not None and scan.dtype is not None and scan.stats is not None
    dtype = options.dtype if options.dtype is not None else scan.dtype
    shape = options.shape if options.shape is not None else scan.shape
    counted = scan.labels.classes() if scan.labels is not None else None
    notes: list[str] = []
    if options.assigned is not None:
        codes = options.assigned.astype(np.int8)
    elif options.stratify:
        assert scan.labels is not None and scan.labels.counts is not None and counted is not None
        sizes = [scan.labels.counts[c] for c in counted]
        allocation = allocate(sizes, options.fractions)
        warning = small_class_warning(counted, allocation, options.names)
        if warning:
            notes.append(warning)
            warnings.warn(warning, SplitWarning, stacklevel=4)
        grouped = codes_by_class(allocation, options.seed)
        codes = _row_codes(source, scan, counted, allocation, grouped)
    else:
        codes = codes_by_class(allocate([scan.rows], options.fractions), options.seed)
    present, first = np.unique(codes, return_index=True)
    dictionary = [int(c) for c in present[np.argsort(first)]]
    by_split: dict[int, LabelCounts] = {int(c): LabelCounts(None) for c in present}
    offset = 0
    with ChunkWriter(blobs, options.names, dictionary) as writer:
        for _, raw in _prefetch([scan.spilled()]):
            features, labels = source.decode(raw, dtype)
            rows = len(features)
            features = features.reshape((rows, *shape))
            if labels is not None and options.label_dtype is not None:
                labels = _cast_labels(labels, options.label_dtype, source.text, options.target)
            scan.hashes.add(features.reshape(rows, -1), labels)  # rows are at hand here
            mine = codes[offset : offset + rows]
            if labels is not None and counted is not None:
                for code, counter in by_split.items():
                    counter.add(labels[mine == code])
            ids = (
                options.sample_ids[offset : offset + rows]
                if options.sample_ids is not None
                else sample_ids_for(digest, rows, offset)
            )
            writer.add(ids, mine, features, labels)
            offset += rows
        chunks = writer.close()
    names = options.names
    present, counts = np.unique(codes, return_counts=True)
    split_rows = {names[int(c)]: int(n) for c, n in zip(present, counts, strict=True)}
    summary: dict[str, Any] = {
        "rows": scan.rows,
        "splits": dict(sorted(split_rows.items())),
        "nonfinite": scan.stats.nonfinite,
        "duplicates": scan.hashes.duplicates(),
        **scan.stats.summary(options.feature_names or source.feature_names),
    }
    if counted is not None:
        summary["labels"] = {
            names[code]: {str(k): v for k, v in sorted((counter.counts or {}).items())}
            for code, counter in sorted(by_split.items(), key=lambda item: names[item[0]])
        }
    label_dtype = options.label_dtype if options.label_dtype is not None else scan.label_dtype
    classes = counted if counted is not None and len(counted) <= MAX_CLASSES else None
    if label_dtype is None or label_dtype.kind == "f":
        classes = None  # real-valued labels are targets, not classes
    return Ingested(
        rows=scan.rows,
        digest=digest,
        chunks=chunks,
        splits=split_rows,
        shape=shape,
        dtype=np.dtype(dtype),
        label_dtype=label_dtype,
        classes=classes,
        summary=summary,
        warnings=notes,
    )


def _row_codes(
    source: Source,
    scan: _Scan,
    classes: list[Any],
    allocation: np.ndarray,
    grouped: np.ndarray,
) -> np.ndarray:
    """Stratified splits in row order: each row takes the code at its rank within its
    class. Reads only the label column of the spill."""
    starts = np.concatenate([[0], np.cumsum(allocation.sum(axis=1))[:-1]]).astype(np.int64)
    seen = np.zeros(len(classes), dtype=np.int64)
    codes = np.empty(scan.rows, dtype=np.int8)
    offset = 0
    for raw in scan.spilled(column=source.label_column):
        labels = source.decode_labels(raw.column(0))
        assert labels is not None
        value_set = pa.array(classes)
        found = pc.index_in(pa.array(labels).cast(value_set.type), value_set=value_set)
        index = found.to_numpy(zero_copy_only=False).astype(np.int64)
        order = np.argsort(index, kind="stable")
        sorted_index = index[order]
        first = np.searchsorted(sorted_index, sorted_index, side="left")
        rank = np.empty(len(index), dtype=np.int64)
        rank[order] = np.arange(len(index)) - first
        rank += seen[index]
        codes[offset : offset + len(index)] = grouped[starts[index] + rank]
        seen += np.bincount(index, minlength=len(classes))
        offset += len(index)
    return codes


_DONE = object()


def _prefetch(
    parts: list[Iterator[pa.RecordBatch]], depth: int = 2
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The items of every part as (part, item), each part produced on a thread of its own
    up to ``depth`` ahead, so parsing or decoding (pyarrow and Pillow release the GIL)
    overlaps the caller's work and other parts. A part's items arrive in order; parts
    interleave. Errors reach the caller; a caller that stops early stops the producers."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth * len(parts))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce(index: int, items: Iterator[pa.RecordBatch]) -> None:
        try:
            for item in items:
                if not put((index, item)):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    workers = [
        threading.Thread(target=produce, args=(i, items), name=f"hone-read-{i}", daemon=True)
        for i, items in enumerate(parts)
    ]
    for worker in workers:
        worker.start()
    try:
        running = len(workers)
        while running:
            item = box.get()
            if item is _DONE:
                running -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for worker in workers:
            while worker.is_alive():
                try:
                    box.get(timeout=0.05)
                except queue.Empty:
                    continue
            worker.join()
