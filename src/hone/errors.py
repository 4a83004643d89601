"""Every error hone raises on purpose.

The hierarchy::

    HoneError                      anything hone raises deliberately
    ├── UserError                  the input was wrong; the message says what to change
    │   ├── ValidationError        a key, value or option is malformed
    │   ├── FilterError            a search filter or order-by does not parse
    │   ├── ConflictError          the request contradicts what is already recorded
    │   └── RejectedError          the store refused a value or query as too large or invalid
    ├── NotFoundError              a run, experiment or blob that does not exist
    ├── WorkspaceError             the workspace is missing, damaged, or its schema not current
    ├── StoreUnavailableError      the metadata store did not answer (in time)
    ├── DiskFullError              a disk hone writes to (journal, blobs, SQLite) is full
    └── BlobError                  the blob store failed or holds corrupt bytes

Lower-layer errors (SQLAlchemy, OS, fsspec) are translated into these at the layer that
calls them. ``EXIT_CODES`` and ``HTTP_STATUS`` are the one table that maps errors to the
CLI's exit codes and (later) the REST API's status codes.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "HTTP_STATUS",
    "BlobError",
    "ConflictError",
    "DiskFullError",
    "FilterError",
    "HoneError",
    "NotFoundError",
    "RejectedError",
    "StoreUnavailableError",
    "UserError",
    "ValidationError",
    "WorkspaceError",
    "exit_code_for",
    "http_status_for",
]


class HoneError(Exception):
    """Base of every error hone raises on purpose."""


class UserError(HoneError):
    """The caller's input was wrong; the message names it and the fix."""


class ValidationError(UserError):
    """A key, value or option is malformed."""


class FilterError(UserError):
    """A search filter or order-by clause does not parse; ``position`` is the character
    offset in the filter where it went wrong, when one is known (a UI points at it)."""

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class ConflictError(UserError):
    """The request contradicts what is already recorded."""


class RejectedError(UserError):
    """The store refused a value or a query: too large, too complex, or not valid text."""


class NotFoundError(HoneError):
    """A run, experiment or blob does not exist."""


class WorkspaceError(HoneError):
    """The workspace is missing, or its schema is older or newer than this hone."""


class StoreUnavailableError(HoneError):
    """The metadata store did not answer."""


class DiskFullError(HoneError):
    """A disk hone writes to is full: the journal, the blob store or the SQLite file."""


class BlobError(HoneError):
    """The blob store failed, or holds bytes that do not match their digest."""


# Most specific class first: lookups walk this table in order.
_TABLE: tuple[tuple[type[HoneError], int, int], ...] = (
    (ConflictError, 2, 409),
    (ValidationError, 2, 400),
    (FilterError, 2, 400),
    (RejectedError, 2, 400),
    (UserError, 2, 400),
    (NotFoundError, 3, 404),
    (WorkspaceError, 4, 409),
    (StoreUnavailableError, 5, 503),
    (DiskFullError, 7, 507),
    (BlobError, 6, 500),
    (HoneError, 1, 500),
)

EXIT_CODES: dict[type[HoneError], int] = {cls: code for cls, code, _ in _TABLE}
HTTP_STATUS: dict[type[HoneError], int] = {cls: status for cls, _, status in _TABLE}


def exit_code_for(error: HoneError) -> int:
    """The CLI exit code for ``error``."""
    for cls, code, _ in _TABLE:
        if isinstance(error, cls):
            return code
    return 1


def http_status_for(error: HoneError) -> int:
    """The HTTP status for ``error``."""
    for cls, _, status in _TABLE:
        if isinstance(error, cls):
            return status
    return 500
