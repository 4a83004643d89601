"""The runs this process has started and not ended: the innermost is the active run."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hone.tracking.run import ActiveRun

__all__ = ["active_run", "forget", "forget_all_in_child", "push"]

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


def forget_all_in_child() -> None:
    """In a forked child: the parent's runs are not the child's to log to."""
    global _lock
    _lock = threading.Lock()  # the parent may have held it at the fork
    runs = list(_stack)
    _stack.clear()
    for run in runs:
        run.inherited_by_fork()
