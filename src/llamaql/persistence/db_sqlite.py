"""SQLite statements in one trip to aiosqlite's thread instead of four.

aiosqlite runs every call on its connection's own thread: the caller queues a function
and the event loop waits for the thread to answer. SQLAlchemy's aiosqlite adapter makes
four such trips per statement (open a cursor, execute, fetch the rows, close the cursor),
and each trip wakes the thread and hands the GIL over twice. Measured with
`bench.request_path`, those hand-overs were the largest single cost of the event loop
between a `sendMessage` frame and its first token, and of every read.

`OneTripCursor` runs the four steps as one function on the thread and keeps what
SQLAlchemy reads afterwards (description, rows, rowcount, lastrowid). The rows are
fetched as the stock adapter fetches them (all at once, for every non-server-side
cursor), so results, errors and transactions are unchanged. `create_db_engine` passes
`module=OneTripDbapi(...)` for `sqlite+aiosqlite://` URLs; other engines in the process,
and server-side cursors, keep SQLAlchemy's adapter.

It relies on aiosqlite's `Connection._execute(fn, *args)` (queue a function for the
connection's thread), present since aiosqlite 0.11 and pinned in pyproject.toml;
tests/unit/test_db_sqlite.py fails if it goes.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

_Outcome = tuple[Any, list[Any] | None, int, int | None]  # description, rows, count, rowid


def _run(connection: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    """On aiosqlite's thread: one statement from cursor to closed cursor."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _run_many(connection: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, parameters)
        return cursor.description, None, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statements each take one trip to the connection's thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        # No thread-side cursor is opened here: each statement opens and closes its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing is open on the thread between statements."""

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(_run, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._trip(_run_many, operation, seq_of_parameters)

    async def _trip(self, function: Any, operation: Any, parameters: Any) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await connection._execute(  # type: ignore[no-untyped-call]
                function, connection._conn, operation, parameters
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows or ())

    def nextset(self) -> None:
        return None


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor

    def rollback(self) -> None:
        """No trip when SQLite holds no transaction: a unit of work that only read
        leaves none (sqlite3 opens one before a write, and each statement's cursor is
        closed on the thread), yet SQLAlchemy rolls back as the unit ends and again as
        the pool takes the connection back, each a trip to the thread for nothing."""
        connection: sqlite3.Connection | None = self._connection._connection
        if connection is not None and not connection.in_transaction:
            return
        super().rollback()


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI whose connections make `OneTripCursor`s."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        adapted.__class__ = _OneTripConnection
        return adapted


def one_trip_dbapi() -> OneTripDbapi:
    return OneTripDbapi(aiosqlite, sqlite3)
