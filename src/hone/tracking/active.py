"""The runs this process has started and not ended: the innermost is the active run."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hone.tracking.run import ActiveRun

__all__ = ["active_run", "forget", "push"]

_stack: list[ActiveRun] = []
_lock = threading.Lock()


def active_run() -> ActiveRun | None:
    """The innermost run this process started and has not ended."""
    with _lock:
        return _stack[-1] if _stack else None


def push(run: ActiveRun) -> None:
    with _lock:
        _stack.append(run)


def forget(run: ActiveRun) -> None:
    """Drop an ending run from the stack, wherever it is in it."""
    with _lock:
        if run in _stack:
            _stack.remove(run)
