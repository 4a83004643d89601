"""Rows in Parquet chunks in the blob store, and reading them back as Arrow."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hone.blobs import BlobStore
from hone.data.manifest import FEATURES, LABEL, SAMPLE_ID, SPLIT, Chunk

__all__ = ["CHUNK_ROWS", "read_table", "rows_table", "write_chunks"]

#: Rows per chunk: appending k rows to a version writes ~k rows of new bytes.
CHUNK_ROWS = 65_536


def rows_table(
    sample_ids: np.ndarray,
    splits: np.ndarray,
    features: np.ndarray,
    labels: np.ndarray | None,
) -> pa.Table:
    """The physical table: ids, split, a fixed-size-list features column, the label."""
    flat = np.ascontiguousarray(features).reshape(len(features), -1)
    width = flat.shape[1]
    values = pa.array(flat.reshape(-1))
    columns = {
        SAMPLE_ID: pa.array(sample_ids, type=pa.int64()),
        SPLIT: pa.array(splits, type=pa.string()).dictionary_encode(),
        FEATURES: pa.FixedSizeListArray.from_arrays(values, width),
    }
    if labels is not None:
        columns[LABEL] = pa.array(labels)
    return pa.table(columns)


def write_chunks(table: pa.Table, blobs: BlobStore) -> list[Chunk]:
    """Store ``table`` as Parquet chunks of ``CHUNK_ROWS`` rows; identical rows → identical
    bytes → identical digests (no timestamps are written)."""
    chunks = []
    for start in range(0, table.num_rows, CHUNK_ROWS):
        part = table.slice(start, CHUNK_ROWS)
        buffer = io.BytesIO()
        pq.write_table(part, buffer, compression="zstd", write_statistics=True)
        chunks.append(Chunk(blobs.put_bytes(buffer.getvalue()), part.num_rows))
    return chunks


def read_table(
    chunks: tuple[Chunk, ...],
    blobs: BlobStore,
    split: str | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """The rows of ``chunks`` (only ``split``'s, if given; only ``columns``, if given) as
    one Arrow table."""
    parts = []
    wanted = None if columns is None else sorted({*columns, *([SPLIT] if split else [])})
    for chunk in chunks:
        with blobs.open(chunk.digest) as fh:
            part = pq.read_table(fh, columns=wanted)
        if split is not None:
            mask = pc.equal(part.column(SPLIT).cast(pa.string()), split)
            part = part.filter(mask)
        parts.append(part)
    if not parts:
        raise ValueError("a version has at least one chunk")
    return pa.concat_tables(parts).combine_chunks()
