"""Ctrl-C and SIGTERM while a study runs: both become ``KeyboardInterrupt`` (the running
trial ends as interrupted and its budget goes back), except inside the short critical
parts of the trial loop (claiming and asking for a trial; telling Optuna how a finished
one ended), where the signal waits until the part is done. A signal that landed between
claiming and asking would leak a claim; one between a trial's end and its record would
throw the finished trial away.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["defer", "interruptible", "release", "take"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pending: list[int] = []
_deferring = [False]


def _handler(signum: int, frame: FrameType | None) -> None:
    if _deferring[0]:
        _pending.append(signum)
        return
    raise KeyboardInterrupt


@contextmanager
def interruptible() -> Iterator[None]:
    """While the block runs (in the main thread), SIGINT and SIGTERM raise
    ``KeyboardInterrupt`` unless deferred. Elsewhere, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {sig: signal.signal(sig, _handler) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _deferring[0] = False
        _pending.clear()


def defer() -> None:
    """From now until ``release``, a signal waits (idempotent)."""
    _deferring[0] = True


def release() -> None:
    """Stop deferring; a signal that came meanwhile is raised now."""
    _deferring[0] = False
    if _pending:
        _pending.clear()
        raise KeyboardInterrupt


def take() -> bool:
    """Stop deferring; whether a signal came meanwhile (it is not raised: the caller
    records what it was doing as interrupted, then raises)."""
    _deferring[0] = False
    came = bool(_pending)
    _pending.clear()
    return came
