"""Telling "the database cannot be reached" from every other database error.

A refused or reset connection, a connect or statement past LLAMAQL_DB_TIMEOUT_SECONDS,
a server shutting down or not accepting connections: none is a bug of the request, and
each leaves the unit of work as the domain's DatabaseUnavailableError (a retryable
SERVICE_UNAVAILABLE), never INTERNAL. What each driver raises was measured through a
TCP proxy that refuses or relays nothing, and with `ALLOW_CONNECTIONS false` plus
`pg_terminate_backend`: raw `ConnectionRefusedError` / `TimeoutError` (asyncpg's connect
and command timeouts are not wrapped by SQLAlchemy), `DBAPIError` with SQLSTATE 55000
"not currently accepting connections", and `InterfaceError` "connection is closed"
(`connection_invalidated`).
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# PostgreSQL SQLSTATEs: class 08 (connection exception), admin_shutdown,
# crash_shutdown, cannot_connect_now, too_many_connections.
_PG_UNREACHABLE = frozenset({"57P01", "57P02", "57P03", "53300"})
_PG_NOT_ACCEPTING = "not currently accepting connections"  # SQLSTATE 55000 at connect
_SQLITE_UNREACHABLE = ("unable to open database file", "disk i/o error")


def is_unreachable(exc: BaseException) -> bool:
    """Whether a failure means the database could not be reached or did not answer in
    time (try again later) rather than a bug."""
    for error in _chain(exc):
        if isinstance(error, OSError | TimeoutError | PoolTimeoutError):
            return True
        if isinstance(error, DBAPIError) and _dbapi_unreachable(error):
            return True
    return False


def _dbapi_unreachable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    original = exc.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(state, str) and (state.startswith("08") or state in _PG_UNREACHABLE):
        return True
    text = str(original).lower()
    return _PG_NOT_ACCEPTING in text or any(marker in text for marker in _SQLITE_UNREACHABLE)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error and its explicit causes (a driver error under SQLAlchemy's); not its
    context, which may be an unrelated error handled earlier."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__
