"""Rows in Parquet chunks in the blob store, and reading them back as Arrow.

A chunk's bytes depend only on its rows (no timestamps), so identical rows give identical
digests however they were gathered: ``ChunkWriter`` cuts a stream of batches into the same
chunks, byte for byte, as ``write_chunks`` cuts a whole table.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hone.blobs import BlobStore
from hone.data.arrow import from_numpy, strings
from hone.data.manifest import FEATURES, LABEL, SAMPLE_ID, SPLIT, Chunk

__all__ = [
    "CHUNK_ROWS",
    "ENCODERS",
    "ChunkWriter",
    "read_table",
    "rows_table",
    "store_chunk",
    "write_chunks",
]

#: Rows per chunk: appending k rows to a version writes ~k rows of new bytes.
CHUNK_ROWS = 65_536
#: Chunks encoded at once (Parquet + zstd releases the GIL): one per core here, and the
#: bound on how many chunks an import holds in memory while they are written.
ENCODERS = 2


def _table(
    sample_ids: np.ndarray, splits: pa.Array, features: np.ndarray, labels: np.ndarray | None
) -> pa.Table:
    flat = np.ascontiguousarray(features).reshape(len(features), -1)
    columns = {
        SAMPLE_ID: from_numpy(sample_ids, pa.int64()),
        SPLIT: splits,
        FEATURES: pa.FixedSizeListArray.from_arrays(from_numpy(flat.reshape(-1)), flat.shape[1]),
    }
    if labels is not None:
        columns[LABEL] = from_numpy(labels)
    return pa.table(columns)


def rows_table(
    sample_ids: np.ndarray,
    splits: np.ndarray,
    features: np.ndarray,
    labels: np.ndarray | None,
) -> pa.Table:
    """The physical table: ids, split, a fixed-size-list features column, the label."""
    encoded = pa.array(splits, type=pa.string()).dictionary_encode()
    return _table(sample_ids, encoded, features, labels)


def _encode(table: pa.Table) -> pa.Buffer:
    buffer = pa.BufferOutputStream()  # native: no Python call per page written
    pq.write_table(table, buffer, compression="zstd", write_statistics=True)
    return buffer.getvalue()


def store_chunk(blobs: BlobStore, encoded: pa.Buffer) -> str:
    """Put an encoded chunk, streamed from Arrow memory: no whole copy as Python bytes
    (copies of ~20 MB per chunk, freed on other threads, bloat glibc's arenas), and
    nothing written when the blob is already stored."""
    digest = hashlib.sha256(memoryview(encoded)).hexdigest()
    if blobs.exists(digest):
        return digest
    return blobs.put_stream(pa.BufferReader(encoded), digest)  # hashed once, just above


def write_chunks(table: pa.Table, blobs: BlobStore) -> list[Chunk]:
    """Store ``table`` as Parquet chunks of ``CHUNK_ROWS`` rows; identical rows → identical
    bytes → identical digests (no timestamps are written)."""
    chunks = []
    for start in range(0, table.num_rows, CHUNK_ROWS):
        part = table.slice(start, CHUNK_ROWS)
        chunks.append(Chunk(store_chunk(blobs, _encode(part)), part.num_rows))
    return chunks


class ChunkWriter:
    """Batches of rows gathered into chunks of ``CHUNK_ROWS``, each encoded and stored in
    ``blobs`` on a few threads while more rows arrive. Splits
    are given as codes into ``names``; ``dictionary`` lists the codes in the order a
    whole-table ``dictionary_encode`` would (first appearance), which the bytes keep."""

    def __init__(self, blobs: BlobStore, names: Sequence[str], dictionary: Sequence[int]) -> None:
        self._blobs = blobs
        self._remap = np.zeros(max(len(names), 1), dtype=np.int32)
        self._remap[list(dictionary)] = np.arange(len(dictionary), dtype=np.int32)
        self._dictionary = strings([names[i] for i in dictionary])
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []
        self._count = 0
        self._pool = ThreadPoolExecutor(ENCODERS, thread_name_prefix="hone-chunks")
        self._running: deque[Future[Chunk]] = deque()
        self.chunks: list[Chunk] = []

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def add(
        self, ids: np.ndarray, codes: np.ndarray, features: np.ndarray, labels: np.ndarray | None
    ) -> None:
        self._pending.append((ids, codes, features, labels))
        self._count += len(ids)
        while self._count >= CHUNK_ROWS:
            self._cut(CHUNK_ROWS)

    def close(self) -> list[Chunk]:
        """Write what is left; every chunk, in order."""
        if self._count:
            self._cut(self._count)
        while self._running:
            self.chunks.append(self._running.popleft().result())
        return self.chunks

    def _cut(self, rows: int) -> None:
        while len(self._running) >= ENCODERS:  # bounded: at most ENCODERS chunks in memory
            self.chunks.append(self._running.popleft().result())
        pieces = self._pending
        if len(pieces[0][0]) >= rows:  # batches that line up with chunks: no copy
            first = pieces[0]
            ids, codes, features, labels = first
        else:
            ids, codes, features = (np.concatenate([p[i] for p in pieces]) for i in range(3))
            parts = [p[3] for p in pieces if p[3] is not None]
            labels = np.concatenate(parts) if parts else None
            pieces = [(ids, codes, features, labels)]
        head = None if labels is None else labels[:rows]
        tail = None if labels is None else labels[rows:]
        rest = [(ids[rows:], codes[rows:], features[rows:], tail)] if len(ids) > rows else []
        self._pending = rest + pieces[1:]
        self._count -= rows
        split = pa.DictionaryArray.from_arrays(
            from_numpy(self._remap[codes[:rows]]), self._dictionary
        )
        table = _table(ids[:rows], split, features[:rows], head)
        self._running.append(self._pool.submit(self._write, table))

    def _write(self, table: pa.Table) -> Chunk:
        return Chunk(store_chunk(self._blobs, _encode(table)), table.num_rows)


def read_table(
    chunks: tuple[Chunk, ...],
    blobs: BlobStore,
    split: str | None = None,
    columns: list[str] | None = None,
    *,
    verify: bool = False,
) -> pa.Table:
    """The rows of ``chunks`` (only ``split``'s, if given; only ``columns``, if given) as
    one Arrow table. With ``verify``, every chunk's bytes are checked against its digest
    first (a corrupt chunk raises ``BlobError``)."""
    parts = []
    wanted = None if columns is None else sorted({*columns, *([SPLIT] if split else [])})
    # A scalar taken from an array built from buffers: pa.scalar(text) imports pandas.
    name = None if split is None else strings([split])[0]
    for chunk in chunks:
        # ParquetFile, not pq.read_table: that goes through pyarrow.dataset, which imports
        # pandas (~0.4 s and ~30 MiB of private memory in every process that reads).
        if verify:
            source = pa.BufferReader(blobs.get_bytes(chunk.digest))
            part = pq.ParquetFile(source).read(columns=wanted)
        else:
            with blobs.open(chunk.digest) as fh:
                part = pq.ParquetFile(fh).read(columns=wanted)
        if name is not None:
            mask = pc.equal(part.column(SPLIT).cast(pa.string()), name)
            part = part.filter(mask)
        parts.append(part)
    if not parts:
        raise ValueError("a version has at least one chunk")
    return pa.concat_tables(parts).combine_chunks()
