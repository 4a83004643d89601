"""A bound on how long one store transaction may take, whatever the network does.

libpq's ``connect_timeout`` bounds connecting and TCP keepalives notice a peer that is gone,
but neither notices a peer that acknowledges every packet and answers nothing (a stuck
proxy or load balancer): a driver call on such a connection blocks forever. The watchdog
bounds it: a transaction still running at its deadline has its socket shut down under it,
so the blocked call fails at once, the connection is discarded, and the caller gets a clean
``StoreUnavailableError`` (a run's end keeps its journal for ``hone sync``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

__all__ = ["Watchdog", "watchdog"]


class Watchdog:
    """One daemon thread that shuts down sockets whose deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, int]] = {}  # token -> (deadline, fd)
        self._fired: set[int] = set()
        self._next_token = 0
        self._thread: threading.Thread | None = None

    def arm(self, fd: int, deadline: float) -> int:
        """Watch socket ``fd`` until ``deadline`` (a ``time.monotonic()`` time)."""
        with self._cond:
            self._next_token += 1
            token = self._next_token
            self._armed[token] = (deadline, fd)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="hone-store-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return token

    def fired(self, token: int) -> bool:
        """Whether ``token``'s deadline passed and its socket was shut down."""
        with self._cond:
            return token in self._fired

    def disarm(self, token: int) -> bool:
        """Stop watching; True if the deadline had passed and the socket was shut down."""
        with self._cond:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                due = [t for t, (deadline, _) in self._armed.items() if deadline <= now]
                for token in due:
                    _, fd = self._armed.pop(token)
                    _shut_down(fd)
                    self._fired.add(token)
                upcoming = [deadline for deadline, _ in self._armed.values()]
                self._cond.wait(min(upcoming) - now if upcoming else None)


def _shut_down(fd: int) -> None:
    # On a duplicate descriptor: shutdown acts on the socket itself, so the driver's
    # blocked read returns, while its own descriptor stays its to close.
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


watchdog = Watchdog()
