"""Fixtures of the split cache's tests: a digits version in a workspace (test modules
may define their own), and a count of its chunk reads."""

from __future__ import annotations

from typing import Any

import pytest

import hone.data
from hone.blobs import BlobStore
from hone.config import Workspace
from hone.data.dataset import DatasetVersion
from hone.data.split_cache import SIZE_ENV


@pytest.fixture(autouse=True)
def _default_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own bound (0, say) would change what these tests see."""
    monkeypatch.delenv(SIZE_ENV, raising=False)


@pytest.fixture
def digits(sqlite_workspace: Workspace) -> DatasetVersion:
    return hone.data.import_dataset(
        "digits", "sklearn:digits", split="train=0.8,test=0.2", workspace=sqlite_workspace
    )


@pytest.fixture
def chunk_reads(monkeypatch: pytest.MonkeyPatch, digits: DatasetVersion) -> list[str]:
    """Every read of one of the version's chunk blobs (``get_bytes`` reads through
    ``open`` too)."""
    reads: list[str] = []
    chunks = {c.digest for c in digits.manifest.chunks}
    store = type(digits.blobs)
    open_blob = store.open

    def counted_open(blobs: BlobStore, digest: str) -> Any:
        if digest in chunks:
            reads.append(digest)
        return open_blob(blobs, digest)

    monkeypatch.setattr(store, "open", counted_open)
    return reads
