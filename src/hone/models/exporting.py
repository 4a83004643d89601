"""Exports of a version, at registration or on demand: each format built, verified on
held-out rows against the eager model, stored as a blob and recorded with its check,
opset and package versions. A failure keeps nothing and says why."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hone.data.api import get as get_dataset
from hone.data.dataset import DatasetVersion
from hone.errors import HoneError, ValidationError
from hone.models.workspace import Opened, WorkspaceLike, opened
from hone.registry import (
    Export,
    ModelVersion,
    get_version,
    list_exports,
    parse_model_ref,
    record_export,
)
from hone.tracking.checkpoints import collect_unreferenced

__all__ = ["FORMATS", "Made", "export", "keep_blobs", "make_exports", "parse_formats"]

FORMATS = ("onnx", "safetensors", "pt2")


@dataclass(frozen=True)
class Made:
    format: str
    digest: str
    size: int
    body: dict[str, Any]  # verification, opset, packages
    data: bytes = field(default=b"", repr=False)  # the file, to store again if collected

    @property
    def record(self) -> dict[str, Any]:
        return {"format": self.format, "digest": self.digest, "size": self.size, "body": self.body}


def keep_blobs(ws: Opened, made: Iterable[Made]) -> None:
    """Files stored before their record existed, stored again if a collection (deleting
    another version or export with identical bytes) took them meanwhile: once recorded,
    no collection takes them (it reads the records in the same transaction it deletes)."""
    for m in made:
        if not ws.blobs.exists(m.digest):
            ws.blobs.put_bytes(m.data)


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """``"onnx,pt2"``, a list of names, or ``"none"`` (nothing exported)."""
    if isinstance(formats, bytes | bytearray):  # type: ignore[unreachable]
        raise ValidationError("formats must be text such as 'onnx,pt2', not bytes")
    if isinstance(formats, str):
        names = [f.strip() for f in formats.split(",")]
    else:
        try:
            names = [str(f).strip() for f in formats]
        except TypeError:
            raise ValidationError(
                f"formats: give names among {', '.join(FORMATS)}, got {type(formats).__name__}"
            ) from None
    if names == ["none"]:
        return ()
    wanted: list[str] = []
    for name in names:
        if name not in FORMATS:
            raise ValidationError(
                f"format {name!r}: choose among {', '.join(FORMATS)} (or none), comma-separated"
            )
        if name not in wanted:
            wanted.append(name)
    return tuple(wanted)


def make_exports(
    ws: Opened,
    name: str,
    run_id: str,
    step: int,
    weights: str,
    body: dict[str, Any],
    data: DatasetVersion,
    formats: Iterable[str],
    ref: str | None = None,
    recorded_graph: bytes | None = None,
) -> list[Made]:
    """Each format exported, verified and stored as a blob (not yet recorded).
    ``recorded_graph``: the version's ONNX file as recorded, which the network rebuilt now
    must match first (an export made again must not change what the version serves)."""
    from hone.export.build import build, held_out
    from hone.export.failures import ExportError
    from hone.export.formats import Exported, describe
    from hone.export.formats import export as export_format
    from hone.export.verify import verify

    shown = ref or f"{name} (run {run_id[:8]}, step {step})"
    built = build(shown, body, weights, data, ws.blobs)
    raw, split = held_out(data, str(body["data"].get("train_split", "train")))
    if recorded_graph is not None:
        try:
            verify(built, Exported("onnx", recorded_graph), raw, split)
        except ExportError as exc:
            raise ExportError(
                f"{shown}: the network rebuilt now is not the one its recorded ONNX export "
                "holds (the recipe's code, or a module it imports, changed since it was "
                f"registered): nothing replaced ({exc})"
            ) from None
    metadata = describe(built, name, run_id, step, body["signature"])
    made: list[Made] = []
    for fmt in formats:
        exported = export_format(built, fmt, raw, metadata)
        checked = verify(built, exported, raw, split)
        digest = ws.blobs.put_bytes(exported.data)
        body = {"verification": checked, **exported.info}
        made.append(Made(fmt, digest, len(exported.data), body, exported.data))
    return made


def export(
    ref: str,
    fmt: str = "onnx",
    *,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
    workspace: WorkspaceLike = None,
) -> Export:
    """``ref``'s export in ``fmt``: the recorded one, else made and verified now (``force``:
    made again, replacing it); ``out`` also writes the file there."""
    found = parse_formats([fmt]) if isinstance(fmt, str) and "," not in fmt else ()
    if len(found) != 1:
        raise ValidationError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    (wanted,) = found
    ws = opened(workspace)
    version = get_version(ws.db, parse_model_ref(ref))
    target = _checked_out(out, ws) if out is not None else None
    if not isinstance(force, bool):
        raise ValidationError(f"force must be true or false, got {force!r:.40}")
    if not force:
        for existing in list_exports(ws.db, version):
            if existing.format == wanted:
                if target is not None:
                    write_file(ws, existing.digest, target)
                return existing
    data = get_dataset(body_data_ref(version), workspace=ws.workspace)
    recorded = {e.format: e for e in list_exports(ws.db, version)}.get("onnx")
    (made,) = make_exports(
        ws,
        version.model,
        version.run_id,
        version.step,
        version.weights,
        version.body,
        data,
        [wanted],
        ref=version.ref,
        recorded_graph=ws.blobs.get_bytes(recorded.digest) if recorded is not None else None,
    )
    kept, replaced = record_export(ws.db, version, made.format, made.digest, made.size, made.body)
    keep_blobs(ws, [made])
    if replaced is not None:
        collect_unreferenced(ws.db, ws.blobs, {replaced})
    if target is not None:
        write_file(ws, made.digest, target)
    return kept


def body_data_ref(version: ModelVersion) -> str:
    return str(version.body["data"]["ref"])


def _checked_out(out: object, ws: Opened) -> Path:
    """Where to write: a new file or a regular one (through a link, to its target), never
    a folder, a device, or a file of the workspace's own."""
    if not isinstance(out, str | os.PathLike) or "\x00" in os.fsdecode(out):
        raise ValidationError(f"--out must be a file path, got {out!r:.60}")
    try:
        path = Path(os.fsdecode(out)).expanduser()
        if path.is_symlink():
            path = path.resolve()
        if path.is_dir():
            raise ValidationError(f"--out {path}: is a folder; give a file path")
        if path.exists() and not path.is_file():
            raise ValidationError(f"--out {path}: is not a regular file (a device, a pipe?)")
        if not path.parent.is_dir():
            raise ValidationError(f"--out {path}: folder {path.parent} does not exist")
        resolved = path.parent.resolve() / path.name
        for inside in _own_folders(ws):
            if resolved.is_relative_to(inside):
                raise ValidationError(
                    f"--out {path}: is inside the workspace's own files ({inside}); write "
                    "the export elsewhere"
                )
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        shown = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ValidationError(f"--out {out!r:.80}: {shown}") from None
    return path


def _own_folders(ws: Opened) -> list[Path]:
    """Where the workspace's state lives, wherever its settings put it: its folder, the
    local blob folder, the folder of a SQLite store (its -wal and -shm files beside it)."""
    found = [ws.workspace.home.resolve()]
    root = getattr(ws.blobs, "root", None)  # a local blob store's folder, however written
    if isinstance(root, Path):
        found.append(root.resolve())
    database = ws.db.sqlite_path()
    if database is not None:
        found.append(database.resolve().parent)
    return found


def write_file(ws: Opened, digest: str, path: Path) -> None:
    """The blob at ``path``, written whole or not at all (a temporary file renamed)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        ws.blobs.copy_to(digest, partial)
        os.replace(partial, path)
    except HoneError:
        partial.unlink(missing_ok=True)
        raise
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ValidationError(f"--out {path}: cannot write it: {exc.strerror or exc}") from exc
