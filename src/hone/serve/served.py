"""The model a server answers with, and its switch to a new version when the alias moves.

``Holder.current`` is replaced whole (one attribute store), so a batch that took the old
``Served`` finishes on it while the next batch takes the new one; every answer names the
version that gave it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hone.blobs import BlobStore
from hone.export.predictor import Predictor
from hone.models.loading import load_version
from hone.registry import ModelVersion, get_version
from hone.registry.refs import ModelRef
from hone.store.database import Database

__all__ = ["Holder", "Served", "load_served", "ready"]

log = logging.getLogger("hone.serve")


@dataclass(frozen=True)
class Served:
    version: ModelVersion
    predictor: Predictor
    loaded_at: float = field(default_factory=time.time)

    @property
    def number(self) -> int:
        return self.version.version

    def takes(self) -> dict[str, Any]:
        """What a request must send, in short (the whole signature: GET /v1/models/NAME)."""
        signature = self.predictor.signature
        return {
            "input": str(signature),
            "dtype": signature.dtype,
            "shape": list(signature.shape),
            "classes": None if signature.classes is None else list(signature.classes),
        }

    def describe(self, ref: ModelRef) -> dict[str, Any]:
        signature = self.version.signature
        return {
            "name": self.version.model,
            "version": self.number,
            "serving": str(ref),
            "aliases": list(self.version.aliases),
            "signature": signature,
            "input": str(self.predictor.signature),
            "classes": signature.get("classes"),
            "loaded_at": self.loaded_at,
            "created_at": self.version.created_at,
            "run_id": self.version.run_id,
        }


def load_served(db: Database, blobs: BlobStore, ref: ModelRef, threads: int) -> Served:
    """Resolve ``ref`` and load its ONNX export, warmed by one prediction (the session's
    first call allocates; no request should pay for it)."""
    return ready(get_version(db, ref), db, blobs, threads)


def ready(version: ModelVersion, db: Database, blobs: BlobStore, threads: int) -> Served:
    predictor = load_version(version, db, blobs, threads=threads)
    shape = (1, *predictor.signature.shape)
    predictor.run_checked(np.zeros(shape, np.dtype(predictor.signature.dtype)))
    return Served(version, predictor)


class Holder:
    """The served model of one worker; ``watch`` follows the reference's alias."""

    def __init__(self, served: Served, ref: ModelRef) -> None:
        self.current = served
        self.ref = ref
        self.reloads = 0
        self.reload_failures = 0
        self.last_error: str | None = None

    @property
    def follows(self) -> bool:
        """Whether the reference can move (an alias or the newest), not a fixed number."""
        return self.ref.version is None

    async def watch(self, db: Database, blobs: BlobStore, every_s: float, threads: int) -> None:
        """Poll the store every ``every_s``; when the reference names another version,
        load it in the background and switch. A failure keeps the current version serving
        and is tried again at the next poll."""
        warned_at = -float("inf")
        while True:
            await asyncio.sleep(every_s)
            try:
                version = await asyncio.to_thread(get_version, db, self.ref)
                if version.version == self.current.number:
                    continue
                served = await asyncio.to_thread(ready, version, db, blobs, threads)
            except Exception as exc:  # the store away, a blob missing: keep serving
                self.reload_failures += 1
                self.last_error = str(exc)
                if time.monotonic() - warned_at > 60:
                    warned_at = time.monotonic()
                    log.warning(
                        "hone: cannot check or load %s (%s); still serving %s",
                        self.ref,
                        exc,
                        self.current.version.ref,
                    )
                continue
            old, self.current = self.current, served
            self.reloads += 1
            self.last_error = None
            log.warning(
                "hone: %s moved: now serving %s (was %s)",
                self.ref,
                served.version.ref,
                old.version.ref,
            )
