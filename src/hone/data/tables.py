"""CSV and Parquet sources, streamed in record batches.

CSV is read with pyarrow's streaming reader, which fixes each column's type from the
first block; a later value that does not fit (``1.5`` under ``int64``) makes the source
widen that column along Arrow's own inference order and ask to be read again, so a column
gets the type a whole-file read would infer. Only the chosen columns are converted. What
only the whole file can tell (empty labels anywhere, the file changing underneath) is
checked by ``finish`` once every part has been read.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hone.data.arrow import to_numpy
from hone.data.importers import FileDigest, ReadAgain, Source, rows_per_batch
from hone.errors import ValidationError

__all__ = ["CSV_BLOCK_BYTES", "CsvSource", "ParquetSource"]

#: The CSV reader's block: 1 MiB parses fastest here (larger blocks cost memory and time).
CSV_BLOCK_BYTES = 1 << 20
#: A CSV is parsed as up to this many ranges at once (at most one per core), each of at
#: least CSV_PART_BYTES.
MAX_CSV_PARTS = 4
CSV_PART_BYTES = 32 << 20
#: Arrow's CSV type inference, loosest last: a value that fails one kind tries the next.
_WIDER = [
    pa.null(),
    pa.int64(),
    pa.bool_(),
    pa.date32(),
    pa.time32("s"),
    pa.timestamp("s"),
    pa.timestamp("ns"),
    pa.timestamp("s", tz="UTC"),
    pa.timestamp("ns", tz="UTC"),
    pa.float64(),
    pa.string(),
    pa.binary(),
]
#: Tables up to this many features are counted column by column in the first pass.
_COLUMNWISE = 256
_BLOCK_ROWS = 1024
_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to ")


def _numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    )


def _label_kind_ok(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
        return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))
    return _numeric(kind) or bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


class _Table(Source):
    """What CSV and Parquet share: choosing columns, checking their types, decoding."""

    path: Path
    label: str | None
    columns: list[str]

    def __init__(self, path: Path, shown: str, label: str | None, features: list[str] | None):
        self.path, self.text, self.label = path, shown, label
        self.label_name = label
        self._digest = FileDigest(path, shown)
        self._handles: list[BinaryIO] = []

    def _input(self) -> str | BinaryIO:
        """What pyarrow reads: the path, or an open file when the path is not UTF-8 text
        (pyarrow cannot encode a latin-1 file name; Python can open it)."""
        text = str(self.path)
        try:
            text.encode()
        except UnicodeEncodeError:
            handle = self.path.open("rb")
            self._handles.append(handle)
            return handle
        return text

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles.clear()

    def _choose(self, names: list[str], features: list[str] | None) -> None:
        source = self.text
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValidationError(
                f"{source}: column name(s) {', '.join(map(repr, repeated))} appear more than "
                "once; give every column its own name"
            )
        garbled = [n for n in names if "\ufffd" in n]
        if garbled:
            raise ValidationError(
                f"{source}: column name {garbled[0]!r} is not UTF-8 text (a latin-1 file?); "
                "re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8"
            )
        label = self.label
        if label is not None and label not in names:
            raise ValidationError(
                f"{source}: no label column {label!r}; columns are {', '.join(names)}"
            )
        chosen = list(features or [n for n in names if n != label])
        missing = [n for n in chosen if n not in names]
        if missing:
            raise ValidationError(
                f"{source}: no feature column(s) {', '.join(missing)}; columns are "
                f"{', '.join(names)}"
            )
        if len(set(chosen)) != len(chosen):
            raise ValidationError(f"{source}: a feature column is named twice in {chosen}")
        if label is not None and label in chosen:
            raise ValidationError(f"{source}: {label!r} cannot be both the label and a feature")
        if not chosen:
            raise ValidationError(f"{source}: no feature columns")
        self.feature_names = tuple(chosen)
        self.columns = chosen + ([label] if label is not None else [])
        self.label_column = len(chosen)

    def _check_types(self, schema: pa.Schema, final: bool) -> None:
        """Refuse columns no widening can make right; with ``final``, every column."""
        for name in self.feature_names:
            kind = schema.field(name).type
            if _numeric(kind) or (pa.types.is_null(kind) and not final):
                continue
            what = "empty (no values)" if pa.types.is_null(kind) else f"{kind}, not numeric"
            raise ValidationError(
                f"{self.text}: feature column {name!r} is {what} (a column with mixed or text "
                "values); encode it as numbers first, or leave it out with --features"
            )
        if self.label is None:
            return
        kind = schema.field(self.label).type
        if _label_kind_ok(kind) or (not final and kind in _WIDER and kind != pa.binary()):
            return
        raise ValidationError(f"{self.text}: label column {self.label!r} {_label_problem(kind)}")

    def decode(
        self, batch: pa.RecordBatch, dtype: np.dtype[Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        width = len(self.feature_names)
        columns = [_feature_values(batch.column(i)) for i in range(width)]
        kind = dtype if dtype is not None else np.result_type(*(c.dtype for c in columns))
        matrix = _rows(columns, kind)
        if self.label is None:
            return matrix, None
        return matrix, self.decode_labels(batch.column(width))

    def scan_values(
        self, batch: pa.RecordBatch
    ) -> tuple[np.ndarray | list[np.ndarray], np.ndarray | None, np.dtype[Any], tuple[int, ...]]:
        """Columns, not a matrix: the first pass counts each column where it lies."""
        width = len(self.feature_names)
        if width > _COLUMNWISE:
            return super().scan_values(batch)
        columns = [_feature_values(batch.column(i)) for i in range(width)]
        dtype = np.result_type(*(c.dtype for c in columns))
        floats = [c.astype(np.float64, copy=False) for c in columns]
        labels = self.decode_labels(batch.column(width)) if self.label is not None else None
        return floats, labels, dtype, (width,)

    def decode_labels(self, column: pa.Array) -> np.ndarray | None:
        if not _label_kind_ok(column.type):
            return None  # not final: this read restarts, or is refused at its end
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        return to_numpy(column)

    def digest(self) -> str:
        return self._digest.result()

    def batches(self) -> Iterator[pa.RecordBatch]:
        for part in self.parts():
            yield from part
        self.finish()

    def _begin(self) -> None:
        """A new read of the whole file: forget the last one's tallies."""
        self._stamp = _stamp(self.path)
        self._tallies: list[_Tally] = []
        self._schema: pa.Schema | None = None
        self._digest.start()

    def _tallied(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The batches of one part, counting what ``finish`` checks over the whole file."""
        tally = _Tally()
        self._tallies.append(tally)
        label_at = len(self.feature_names)
        for batch in batches:
            tally.rows += batch.num_rows
            if self.label is not None:
                column = batch.column(label_at)
                tally.nulls += column.null_count
                if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                    # a CSV's empty cell in a text column reads as "", not as missing
                    tally.nulls += int(pc.sum(pc.equal(column, "")).as_py() or 0)
                if pa.types.is_floating(column.type):
                    tally.nonfinite += int(pc.sum(pc.invert(pc.is_finite(column))).as_py() or 0)
            yield batch

    def finish(self) -> None:
        """What only the whole file tells: final column types, empty and non-finite
        labels, and that the file did not change meanwhile. A file without rows is left
        for the importer to refuse as such."""
        if not sum(t.rows for t in self._tallies):
            return
        if self._schema is not None:
            self._check_types(self._schema, final=True)
        if _stamp(self.path) != self._stamp:
            raise ValidationError(
                f"{self.text} changed while it was being imported; import it again once it "
                "is complete"
            )
        nulls = sum(t.nulls for t in self._tallies)
        if nulls:
            raise ValidationError(
                f"{self.text}: label column {self.label!r} has {nulls} empty value(s); fill "
                "or drop those rows"
            )
        nonfinite = sum(t.nonfinite for t in self._tallies)
        if nonfinite:
            raise ValidationError(
                f"{self.text}: label column {self.label!r} has {nonfinite} NaN or infinite "
                "value(s); fill or drop those rows"
            )


@dataclass
class _Tally:
    rows: int = 0
    nulls: int = 0
    nonfinite: int = 0


class CsvSource(_Table):
    """A CSV (or TSV) file. A large file is parsed as a few byte ranges at once, each cut at
    a line end, each by its own streaming reader on its own thread (pyarrow's streaming
    reader uses one core): the ranges after the first have no header, and take the column
    types the first range's first block gave, as a one-reader read would."""

    kind = "csv"

    def __init__(self, path: Path, shown: str, label: str | None, features: list[str] | None):
        super().__init__(path, shown, label, features)
        self.delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        self.types: dict[str, pa.DataType] = {}
        try:
            reader = self._open(self._input(), None)
            names = reader.schema.names
            reader.close()
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{shown}: the header is not UTF-8 text (a latin-1 file?); re-encode the "
                "file as UTF-8, e.g. iconv -f latin1 -t utf-8"
            ) from exc
        finally:
            self.close()
        self.names = names
        self._choose(names, features)

    def _open(
        self, source: str | BinaryIO, columns: list[str] | None, header: bool = True
    ) -> pa.RecordBatchReader:
        import pyarrow.csv as pcsv

        read = pcsv.ReadOptions(
            block_size=CSV_BLOCK_BYTES, column_names=None if header else self.names
        )
        try:
            return pcsv.open_csv(
                source,
                read_options=read,
                parse_options=pcsv.ParseOptions(delimiter=self.delimiter),
                convert_options=pcsv.ConvertOptions(
                    include_columns=columns or [], column_types=self.types
                ),
            )
        except pa.ArrowInvalid as exc:
            raise self._invalid(exc) from exc
        except OSError as exc:
            raise ValidationError(f"cannot read {self.text}: {exc}") from exc

    def _invalid(self, exc: pa.ArrowInvalid) -> ValidationError | ReadAgain:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        found = _CONVERSION.match(message)
        if found and int(found.group(1)) < len(self.names):
            name = self.names[int(found.group(1))]
            current = self.types.get(name)
            if current is not None and current in _WIDER and current != _WIDER[-1]:
                self.types[name] = _WIDER[_WIDER.index(current) + 1]
                return ReadAgain(name)
        if message == "Empty CSV file":
            return ValidationError(f"{self.text} holds no rows: the file is empty")
        # pyarrow says e.g. "CSV parse error: Expected 3 columns, got 2: 1,2" with the row
        return ValidationError(f"{self.text}: {message}")

    def parts(self) -> list[Iterator[pa.RecordBatch]]:
        self._begin()
        cuts = self._cuts()
        first = self._open(self._range(0, cuts[0]) if cuts else self._input(), self.columns)
        schema = first.schema
        for name in self.columns:  # a later failure widens from the type now in force
            self.types.setdefault(name, schema.field(name).type)
        self._check_types(schema, final=False)
        self._schema = schema
        readers = [first]
        ends: list[int | None] = [*cuts[1:], None]
        for start, stop in zip(cuts, ends[: len(cuts)], strict=True):
            readers.append(self._open(self._range(start, stop), self.columns, header=False))
        target = rows_per_batch(len(self.feature_names))
        return [self._tallied(_coalesce(self._read(r), target)) for r in readers]

    def _cuts(self) -> list[int]:
        """Where the ranges after the first begin: just past a line end."""
        size = self.path.stat().st_size
        count = min(MAX_CSV_PARTS, os.cpu_count() or 1, size // CSV_PART_BYTES)
        if count < 2:
            return []
        cuts: list[int] = []
        with self.path.open("rb") as fh:
            for i in range(1, count):
                fh.seek(size * i // count)
                fh.readline()  # to the end of the line this offset falls in
                at = fh.tell()
                if at < size and (not cuts or at > cuts[-1]):
                    cuts.append(at)
        return cuts

    def _range(self, start: int, stop: int | None) -> BinaryIO:
        handle = _Range(self.path, start, stop)
        self._handles.append(handle)  # type: ignore[arg-type]
        return handle  # type: ignore[return-value]

    def _read(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise self._invalid(exc) from exc
            yield batch


class _Range(io.RawIOBase):
    """Bytes ``start`` to ``stop`` of a file, as a file of their own."""

    def __init__(self, path: Path, start: int, stop: int | None) -> None:
        self._file = path.open("rb")
        self._file.seek(start)
        self._left = -1 if stop is None else stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._left >= 0:
            view = view[: self._left]
        read = self._file.readinto(view)
        if self._left >= 0:
            self._left -= read
        return read

    def close(self) -> None:
        self._file.close()
        super().close()


class ParquetSource(_Table):
    kind = "parquet"

    def __init__(self, path: Path, shown: str, label: str | None, features: list[str] | None):
        import pyarrow.parquet as pq

        super().__init__(path, shown, label, features)
        try:
            self.file = pq.ParquetFile(self._input())
            schema = self.file.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            self.close()
            raise ValidationError(f"{shown} is not a readable Parquet file: {exc}") from exc
        self._choose(schema.names, features)
        self._check_types(schema, final=True)

    def parts(self) -> list[Iterator[pa.RecordBatch]]:
        self._begin()
        return [self._tallied(self._read())]

    def _read(self) -> Iterator[pa.RecordBatch]:
        size = rows_per_batch(len(self.feature_names))
        try:
            yield from self.file.iter_batches(batch_size=size, columns=self.columns)
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(f"{self.text} is not a readable Parquet file: {exc}") from exc


def _coalesce(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Small reader batches (one per 1 MiB block) regathered into batches of exactly
    ``rows`` (the last may be shorter): fewer, larger batches keep the per-batch work
    vectorized, and batches that line up with chunks are written without a copy."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            table = pa.Table.from_batches(pending).combine_chunks()
            start = 0
            while count - start >= rows:
                yield table.slice(start, rows).to_batches()[0]
                start += rows
            pending = table.slice(start).to_batches() if start < count else []
            count -= start
    if pending:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _rows(columns: list[np.ndarray], dtype: np.dtype[Any]) -> np.ndarray:
    """Columns as a row-major matrix, copied a block of rows at a time (each block's
    columns stay in cache: twice as fast as np.column_stack at 64 columns)."""
    rows = len(columns[0])
    out = np.empty((rows, len(columns)), dtype=dtype)
    for start in range(0, rows, _BLOCK_ROWS):
        block = out[start : start + _BLOCK_ROWS]
        for j, column in enumerate(columns):
            block[:, j] = column[start : start + _BLOCK_ROWS]
    return out


def _feature_values(column: pa.Array) -> np.ndarray:
    """A feature column as numbers; empty cells become NaN (so the non-finite rule, and
    --allow-nonfinite, decide about them), which makes an integer column float."""
    kind = column.type
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan)
    if column.null_count:
        if not pa.types.is_floating(kind):
            column = pc.cast(column, pa.float64())
        column = pc.fill_null(column, pa.scalar(np.nan, type=column.type))
    return to_numpy(column)


def _label_problem(kind: pa.DataType) -> str:
    if pa.types.is_null(kind):
        return "is empty (no values)"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return (
            "holds bytes that are not UTF-8 text (a latin-1 file?); re-encode the file as "
            "UTF-8, e.g. iconv -f latin1 -t utf-8"
        )
    if pa.types.is_temporal(kind):
        return (
            f"is {kind}: dates and times are not labels; turn them into classes (text) or "
            "numbers first"
        )
    if pa.types.is_nested(kind):
        return f"is {kind}: a label is one number or one text value per row"
    return f"is {kind}: a label is a number, a boolean or text"


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return stat.st_size, stat.st_mtime_ns
