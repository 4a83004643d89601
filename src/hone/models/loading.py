"""``load``: a registered version's ONNX export as a ready predictor. No PyTorch, no
recipe code, nothing unpickled: the graph's bytes (checked against their digest) and the
version's signature."""

from __future__ import annotations

from hone.blobs import BlobStore
from hone.errors import BlobError
from hone.export.predictor import Predictor, Signature
from hone.ids import sha256_bytes
from hone.models.workspace import WorkspaceLike, opened
from hone.registry import ModelVersion, get_export, get_version, parse_model_ref
from hone.store.database import Database

__all__ = ["load", "load_version"]


def load(ref: str, *, workspace: WorkspaceLike = None, threads: int | None = None) -> Predictor:
    """The predictor of ``ref`` (``NAME@N``, ``NAME@ALIAS``, ``NAME@latest``)."""
    ws = opened(workspace)
    version = get_version(ws.db, parse_model_ref(ref))
    return load_version(version, ws.db, ws.blobs, threads=threads)


def load_version(
    version: ModelVersion, db: Database, blobs: BlobStore, *, threads: int | None = None
) -> Predictor:
    digest = get_export(db, version, "onnx").digest
    graph = blobs.get_bytes(digest)
    if sha256_bytes(graph) != digest:
        raise BlobError(f"{version.ref}: its ONNX file (blob {digest[:12]}) is corrupt")
    return Predictor(
        graph, Signature.from_dict(version.signature), ref=version.ref, threads=threads
    )
