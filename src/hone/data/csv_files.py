"""CSV (and TSV) sources, read with pyarrow's streaming reader in parallel ranges.

pyarrow's streaming reader fixes each column's type from the first block; a later value
that does not fit (``1.5`` under ``int64``) makes the source widen that column along
Arrow's own inference order and ask to be read again (``ReadAgain``), so a column gets
the type a whole-file read would infer. Only the chosen columns are converted.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from hone.data.importers import ReadAgain, rows_per_batch
from hone.data.tables import Table, coalesce
from hone.errors import ValidationError

__all__ = ["CSV_BLOCK_BYTES", "CSV_PART_BYTES", "MAX_CSV_PARTS", "CsvSource"]

#: The CSV reader's block: 1 MiB parses fastest here (larger blocks cost memory and time).
CSV_BLOCK_BYTES = 1 << 20
#: A CSV is parsed as up to this many ranges at once (at most one per core), each of at
#: least CSV_PART_BYTES.
MAX_CSV_PARTS = 4
CSV_PART_BYTES = 8 << 20
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
_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to ")


class CsvSource(Table):
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
            reader = self._open(self.input(), None)
            schema = reader.schema
            names = schema.names
            reader.close()
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{shown}: the header is not UTF-8 text (a latin-1 file?); re-encode the "
                "file as UTF-8, e.g. iconv -f latin1 -t utf-8"
            ) from exc
        finally:
            self.close()
        self.names = names
        self.choose(names, features)
        # The types Arrow inferred from the first block, given back explicitly on every
        # read: the same result, and a third less CPU than letting each reader infer.
        self.types = {name: schema.field(name).type for name in self.columns}

    def _may_widen(self, kind: pa.DataType) -> bool:
        return kind in _WIDER and kind != _WIDER[-1]

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
        self.begin()
        cuts = self._cuts()
        first = self._open(self._range(0, cuts[0]) if cuts else self.input(), self.columns)
        schema = first.schema
        for name in self.columns:  # a later failure widens from the type now in force
            self.types.setdefault(name, schema.field(name).type)
        self.check_types(schema, final=False)
        self._schema = schema
        readers = [first]
        ends: list[int | None] = [*cuts[1:], None]
        for start, stop in zip(cuts, ends[: len(cuts)], strict=True):
            readers.append(self._open(self._range(start, stop), self.columns, header=False))
        target = rows_per_batch(len(self.feature_names))
        return [self.tallied(coalesce(self._read(r), target)) for r in readers]

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
