"""Exports of a version, at registration or on demand: each format built, verified on
held-out rows against the eager model, stored as a blob and recorded with its check,
opset and package versions. A failure keeps nothing and says why."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hone.data.api import get as get_dataset
from hone.data.dataset import DatasetVersion
from hone.errors import HoneError, ValidationError
from hone.models.workspace import Opened, WorkspaceLike, opened
from hone.registry import Export, ModelVersion, get_version, parse_model_ref, record_export
from hone.tracking.checkpoints import collect_unreferenced

__all__ = ["FORMATS", "Made", "export", "make_exports", "parse_formats"]

FORMATS = ("onnx", "safetensors", "pt2")


@dataclass(frozen=True)
class Made:
    format: str
    digest: str
    size: int
    body: dict[str, Any]  # verification, opset, packages

    @property
    def record(self) -> dict[str, Any]:
        return {"format": self.format, "digest": self.digest, "size": self.size, "body": self.body}


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """``"onnx,pt2"``, a list of names, or ``"none"`` (nothing exported)."""
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
) -> list[Made]:
    """Each format exported, verified and stored as a blob (not yet recorded)."""
    from hone.export.build import build, held_out
    from hone.export.formats import describe
    from hone.export.formats import export as export_format
    from hone.export.verify import verify

    shown = ref or f"{name} (run {run_id[:8]}, step {step})"
    built = build(shown, body, weights, data, ws.blobs)
    raw, split = held_out(data, str(body["data"].get("train_split", "train")))
    metadata = describe(built, name, run_id, step, body["signature"])
    made: list[Made] = []
    for fmt in formats:
        exported = export_format(built, fmt, raw, metadata)
        checked = verify(built, exported, raw, split)
        digest = ws.blobs.put_bytes(exported.data)
        made.append(
            Made(fmt, digest, len(exported.data), {"verification": checked, **exported.info})
        )
    return made


def export(
    ref: str,
    fmt: str = "onnx",
    *,
    out: str | os.PathLike[str] | None = None,
    workspace: WorkspaceLike = None,
) -> Export:
    """Export ``ref`` in ``fmt`` now (replacing an earlier export of that format), verified
    first; ``out`` also writes the file there."""
    (wanted,) = parse_formats([fmt]) or ("",)
    ws = opened(workspace)
    version = get_version(ws.db, parse_model_ref(ref))
    target = _checked_out(out) if out is not None else None
    data = get_dataset(body_data_ref(version), workspace=ws.workspace)
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
    )
    recorded, replaced = record_export(
        ws.db, version, made.format, made.digest, made.size, made.body
    )
    if replaced is not None:
        collect_unreferenced(ws.db, ws.blobs, {replaced})
    if target is not None:
        write_file(ws, made.digest, target)
    return recorded


def body_data_ref(version: ModelVersion) -> str:
    return str(version.body["data"]["ref"])


def _checked_out(out: str | os.PathLike[str]) -> Path:
    path = Path(os.fsdecode(out)).expanduser()
    if path.is_dir():
        raise ValidationError(f"--out {path}: is a folder; give a file path")
    if not path.parent.is_dir():
        raise ValidationError(f"--out {path}: folder {path.parent} does not exist")
    return path


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
