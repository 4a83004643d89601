"""Driver errors translated by what they mean, not by the class the driver chose.

SQLite reports a filter too deep to parse and a locked database alike as
``OperationalError``; PostgreSQL reports a NUL byte in text and a varchar overflow as
``DataError``, a statement too complex as ``ProgrammingError``. What the caller needs is the
kind of failure, because the kinds are handled differently:

- ``RejectedError`` — the store refused *this* value or query (too large, too complex, not
  valid text, a constraint). Retrying cannot help; the tracking sink sets the record aside.
- ``StoreUnavailableError`` — the store did not answer, or answered "busy, try again".
  Retrying later can help; journals are kept for it.
- ``DiskFullError`` — the disk under the store is full.
- ``WorkspaceError`` — the database is damaged or is not a hone database.
- ``HoneError`` — anything else (a hone bug, most likely): one line, not a traceback.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)

from hone.errors import (
    DiskFullError,
    HoneError,
    RejectedError,
    StoreUnavailableError,
    WorkspaceError,
)

__all__ = ["translate_store_error"]

log = logging.getLogger("hone.store")

# sqlite3's primary result codes (the low byte of an extended code).
_SQLITE_UNAVAILABLE = {5, 6, 9, 10, 14, 15}  # BUSY LOCKED INTERRUPT IOERR CANTOPEN PROTOCOL
_SQLITE_FULL = 13
_SQLITE_DAMAGED = {11, 26}  # CORRUPT NOTADB
_SQLITE_REJECTED = {18, 19, 20, 25}  # TOOBIG CONSTRAINT MISMATCH RANGE
_SQLITE_READONLY = {3, 8, 23}  # PERM READONLY AUTH
# SQLITE_ERROR (1) covers both query limits and schema damage; its message tells which.
_SQLITE_LIMIT_MESSAGES = (
    "expression tree is too large",
    "pattern too complex",
    "too many sql variables",
    "too many terms",
    "too many columns",
    "parser stack overflow",
    "too big",
    "string or blob too big",
)
_SCHEMA_MESSAGES = ("no such table", "no such column", "undefined table", "undefined column")


def translate_store_error(exc: BaseException, where: str) -> HoneError | None:
    """The ``HoneError`` that ``exc``, raised by the store at ``where``, means; None if
    ``exc`` is not a store error at all (it then propagates as it is)."""
    if isinstance(exc, (UnicodeError, OverflowError)):
        # sqlite3 raises these itself while binding a lone surrogate or a huge integer.
        return RejectedError(f"the metadata store at {where} refused a value: {exc}")
    if not isinstance(exc, SQLAlchemyError):
        return None
    orig = getattr(exc, "orig", None)
    message = _first_line(orig if orig is not None else exc)
    lowered = message.lower()
    if isinstance(orig, (UnicodeError, OverflowError)):
        return RejectedError(f"the metadata store at {where} refused a value: {message}")
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _sqlite(code & 0xFF, message, lowered, where)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return _postgres(sqlstate, message, where)
    if "error binding parameter" in lowered:  # sqlite3: a value of a type it cannot bind
        return RejectedError(f"the metadata store at {where} refused a value: {message}")
    if "number of parameters must be" in lowered:  # psycopg: over 65,535 bind parameters
        return RejectedError(f"the metadata store at {where} refused the request: {message}")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StoreUnavailableError(f"lost the connection to the metadata store at {where}")
    if isinstance(exc, (DataError, IntegrityError)):
        return RejectedError(f"the metadata store at {where} refused a value: {message}")
    if isinstance(exc, (OperationalError, InterfaceError)):
        return StoreUnavailableError(f"the metadata store at {where} did not answer: {message}")
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return RejectedError(f"the metadata store at {where} refused a value: {message}")
    log.debug("unexpected store error", exc_info=exc)
    return HoneError(f"the metadata store at {where} failed: {message}")


def _sqlite(code: int, message: str, lowered: str, where: str) -> HoneError:
    if code == _SQLITE_FULL:
        return DiskFullError(f"the disk holding the SQLite store {where} is full: {message}")
    if code in _SQLITE_DAMAGED:
        return WorkspaceError(
            f"the SQLite store {where} is damaged or not a hone database ({message}); "
            "restore it from a backup, or move it away and run `hone init`"
        )
    if code in _SQLITE_REJECTED or any(m in lowered for m in _SQLITE_LIMIT_MESSAGES):
        return RejectedError(f"the metadata store at {where} refused the request: {message}")
    if code in _SQLITE_READONLY:
        return StoreUnavailableError(f"cannot write to the SQLite store {where}: {message}")
    if code in _SQLITE_UNAVAILABLE:
        return StoreUnavailableError(f"the metadata store at {where} did not answer: {message}")
    if any(m in lowered for m in _SCHEMA_MESSAGES):
        return _schema_damaged(where, message)
    log.debug("unexpected SQLite error code %s: %s", code, message)
    return HoneError(f"the metadata store at {where} failed: {message}")


def _postgres(sqlstate: str, message: str, where: str) -> HoneError:
    klass = sqlstate[:2]
    if sqlstate == "53100":
        return DiskFullError(f"the disk of the PostgreSQL store {where} is full: {message}")
    if sqlstate == "57014":
        return StoreUnavailableError(f"the metadata store at {where} cancelled a statement")
    if klass in ("08", "53", "57", "40", "58", "55"):
        return StoreUnavailableError(f"the metadata store at {where} did not answer: {message}")
    if klass in ("22", "23", "54") or (sqlstate == "42601" and "memory exhausted" in message):
        # (42601 "memory exhausted": the parser's limit on a query's nesting.)
        return RejectedError(f"the metadata store at {where} refused the request: {message}")
    if sqlstate in ("42804", "42P18"):  # a value of the wrong type for its column
        return RejectedError(f"the metadata store at {where} refused a value: {message}")
    if sqlstate in ("42P01", "42703"):
        return _schema_damaged(where, message)
    if sqlstate == "42501":
        return StoreUnavailableError(f"the metadata store at {where} refused access: {message}")
    if sqlstate in ("3D000", "28000", "28P01"):
        return StoreUnavailableError(f"cannot use the metadata store at {where}: {message}")
    log.debug("unexpected PostgreSQL error %s: %s", sqlstate, message)
    return HoneError(f"the metadata store at {where} failed ({sqlstate}): {message}")


def _schema_damaged(where: str, message: str) -> WorkspaceError:
    return WorkspaceError(
        f"the store at {where} lacks part of hone's schema ({message}); run `hone db "
        "upgrade`, or restore the database from a backup"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
