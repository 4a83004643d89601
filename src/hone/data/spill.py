"""The importer's scratch space: raw batches spilled between its two passes, in a private
folder under the system's temporary directory (``TMPDIR``; about the source's size as
binary, e.g. 5.1 GB for 10 million rows of 64 float64), removed when the import ends,
however it ends.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from hone.errors import DiskFullError, HoneError

__all__ = ["Scratch", "Spill"]


def _scratch_error(exc: OSError, where: Path) -> HoneError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            f"the disk holding the import's temporary files ({where.parent}) is full: free "
            "space there, or point TMPDIR at a disk with room"
        )
    return HoneError(f"cannot write the import's temporary files in {where}: {exc}")


class Scratch:
    """A private temporary folder for one import."""

    def __init__(self) -> None:
        try:
            self.root = Path(tempfile.mkdtemp(prefix="hone-import-"))
        except OSError as exc:
            raise _scratch_error(exc, Path(tempfile.gettempdir()) / "hone-import") from exc

    def __enter__(self) -> Scratch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def spill(self, attempt: int, part: int = 0) -> Spill:
        return Spill(self.root / f"spill-{attempt}-{part}.arrow")


class Spill:
    """Raw batches written as an Arrow IPC file, read back in order (whole batches, or
    one column of each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sink: pa.NativeFile | None = None
        self._writer: pa.ipc.RecordBatchFileWriter | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        try:
            if self._writer is None:
                self._sink = pa.OSFile(str(self.path), "wb")
                self._writer = pa.ipc.new_file(self._sink, batch.schema)
            self._writer.write_batch(batch)
        except OSError as exc:
            raise _scratch_error(exc, self.path.parent) from exc

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if self._sink is not None:
                self._sink.close()
        except OSError as exc:
            raise _scratch_error(exc, self.path.parent) from exc
        self._writer = self._sink = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def batches(self, column: int | None = None) -> Iterator[pa.RecordBatch]:
        """The spilled batches in order; with ``column``, only that field is read."""
        if not self.path.exists():
            return
        options = pa.ipc.IpcReadOptions(included_fields=[column] if column is not None else None)
        with pa.OSFile(str(self.path)) as source:
            reader = pa.ipc.open_file(source, options=options)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)
