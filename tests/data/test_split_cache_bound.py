"""The split cache's size bound (HONE_SPLIT_CACHE_BYTES): 0 turns it off, a split larger
than it is read in memory, garbage is refused by name, and it evicts the least recently
used file."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

import hone.data
from hone.data.dataset import DatasetVersion
from hone.data.split_cache import SIZE_ENV, cache_bytes
from hone.errors import ValidationError
from tests.data.split_cache_helpers import batches, cache_file, expected, same

pytest.importorskip("torch")


def test_zero_turns_the_cache_off(
    digits: DatasetVersion, monkeypatch: pytest.MonkeyPatch, chunk_reads: list[str]
) -> None:
    monkeypatch.setenv(SIZE_ENV, "0")
    first = batches(digits)
    chunk_reads.clear()
    assert same(batches(digits), first)
    assert chunk_reads  # every loader decodes, as without the cache
    assert digits.home is not None and not (digits.home / "cache").exists()


def test_a_split_larger_than_the_bound_is_read_in_memory(
    digits: DatasetVersion, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(SIZE_ENV, "100K")  # the train split is ~730 KiB decoded
    with caplog.at_level(logging.WARNING, logger="hone.data"):
        x, _ = digits.to_numpy("train", raw=True, shared=True)
    assert np.array_equal(x, expected(digits, "train")[0])
    assert "more than the split cache holds" in caplog.records[0].getMessage()
    assert digits.home is not None and not (digits.home / "cache").exists()


@pytest.mark.parametrize("text", ["lots", "-1", "1.5G", "8 GB!", "\uff11\uff10"])  # full-width 10
def test_a_size_that_is_not_one_is_refused_by_name(
    digits: DatasetVersion, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv(SIZE_ENV, text)
    with pytest.raises(ValidationError, match=SIZE_ENV):
        hone.data.loader(digits, "train", 10)


@pytest.mark.parametrize(
    ("text", "size"),
    [("", 8 << 30), (" 1024 ", 1024), ("2G", 2 << 30), ("512MiB", 512 << 20), ("3kb", 3072)],
)
def test_sizes_are_read_in_units_of_1024(
    monkeypatch: pytest.MonkeyPatch, text: str, size: int
) -> None:
    monkeypatch.setenv(SIZE_ENV, text)
    assert cache_bytes() == size


def test_the_bound_evicts_the_least_recently_used_file(
    digits: DatasetVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    normalized = hone.data.normalize(digits)
    train, test, other = (
        cache_file(digits, "train"),
        cache_file(digits, "test"),
        cache_file(normalized, "test"),
    )
    digits.to_numpy("train", raw=True, shared=True)
    digits.to_numpy("test", raw=True, shared=True)
    time.sleep(0.02)
    digits.to_numpy("train", raw=True, shared=True)  # used again: now the newer of the two
    assert train.stat().st_mtime > test.stat().st_mtime
    # Room for train and one test-sized file, not for three.
    monkeypatch.setenv(SIZE_ENV, str(train.stat().st_size + test.stat().st_size + 1024))
    x, _ = normalized.to_numpy("test", raw=True, shared=True)
    assert train.is_file() and other.is_file() and not test.exists()
    assert np.array_equal(x, expected(digits, "test")[0])
