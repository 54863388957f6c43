"""SqlUnitOfWork: one short session, rolled back on exit unless committed.

Contention the database could not wait out (SQLite's "database is locked", PostgreSQL's
serialization failures, deadlocks and lock timeouts) leaves the unit of work as the
domain's StorageBusyError, a retryable QUEUE_FULL, never INTERNAL. A database that cannot
be reached (`outages.is_unreachable`) leaves it as DatabaseUnavailableError, a retryable
SERVICE_UNAVAILABLE; so does a unit of work still running after `timeout_s`
(LLAMAQL_DB_TIMEOUT_SECONDS) after it was made, however its time went: waiting for one of
its user's database units (db_share), for a pooled connection, a pre-ping, a reconnect and
a statement would each get that long on their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType
from typing import Self

import aiosqlite
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from llamaql.persistence.db import SessionFactory
from llamaql.persistence.outages import is_unreachable
from llamaql.persistence.repositories.branches import SqlBranchRepository
from llamaql.persistence.repositories.conversations import SqlConversationRepository
from llamaql.persistence.repositories.events import SqlEventRepository
from llamaql.persistence.repositories.messages import SqlMessageRepository
from llamaql.persistence.repositories.search import SqlSearchRepository
from llamaql.ports.errors import DatabaseUnavailableError, StorageBusyError
from llamaql.ports.events import EventBell, EventRepository
from llamaql.ports.repositories import (
    BranchRepository,
    ConversationRepository,
    MessageRepository,
    UnitOfWorkFactory,
)
from llamaql.ports.search import SearchRepository

logger = logging.getLogger(__name__)


class SqlUnitOfWork:
    """A UnitOfWork over one AsyncSession; use once, as `async with`."""

    conversations: ConversationRepository
    messages: MessageRepository
    branches: BranchRepository
    search: SearchRepository
    events: EventRepository

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        timeout_s: float | None = None,
        discarding: set[asyncio.Task[None]] | None = None,
        bell: EventBell | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._bell = bell  # rung after a commit that wrote events
        self._session: AsyncSession | None = None
        self._timeout_s = timeout_s
        # Sessions of an unreachable database being discarded in the background.
        self._discarding = discarding if discarding is not None else set()
        self._deadline: asyncio.Timeout | None = None
        # The deadline counts from here, not from `__aenter__`: a unit made and then kept
        # waiting for one of its user's database units (db_share) has spent that time too.
        self._made_at = time.monotonic()

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open; create a new one")
        if self._timeout_s is not None:
            # Entered here and left in __aexit__ (the same task): the caller's block runs
            # under it, and its cancellation at the deadline comes out as TimeoutError.
            left = self._timeout_s - (time.monotonic() - self._made_at)
            self._deadline = asyncio.timeout(max(left, 0.0))
            await self._deadline.__aenter__()
        self._session = self._session_factory()
        self.conversations = SqlConversationRepository(self._session)
        self.messages = SqlMessageRepository(self._session)
        self.branches = SqlBranchRepository(self._session)
        self.search = SqlSearchRepository(self._session)
        self._outbox = SqlEventRepository(self._session)
        self.events = self._outbox
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        if session is None:
            return
        deadline, self._deadline = self._deadline, None
        if deadline is not None:
            try:
                await deadline.__aexit__(exc_type, exc, tb)
            except TimeoutError as timed_out:
                exc = timed_out  # the block ran past the deadline: the database is slow
        if exc is not None and is_unreachable(exc):
            # A connection that timed out or lost its server is dropped, not rolled back
            # (a rollback would wait for an answer that is not coming), in the background:
            # SQLAlchemy's invalidation still says goodbye, for up to 2 s, first.
            task = asyncio.create_task(_discard(session), name="discard-session")
            self._discarding.add(task)
            task.add_done_callback(self._discarding.discard)
            raise DatabaseUnavailableError() from exc
        # close() detaches every loaded object before it rolls back whatever was not
        # committed: a rollback() first would expire the objects this unit of work
        # returned, and reading them afterwards would fail (they are detached).
        # Shielded: a request cancelled meanwhile (a client gone, graphql-core cancelling
        # a failed query's other fields) would cut the pool's rollback in half, and the
        # connection would be dropped with an error logged; the close finishes anyway and
        # the cancellation still reaches the caller. A unit that ended well and whose
        # close waits for nothing cannot be cut, and goes without the shield's task.
        try:
            if exc is None and _closes_at_once(session):
                await session.close()
            else:
                await asyncio.shield(session.close())
        except Exception as close_error:
            if exc is not None:  # the block's own error is what the caller hears
                logger.warning("closing a failed unit of work failed too: %s", close_error)
            elif is_unreachable(close_error):
                raise DatabaseUnavailableError() from close_error
            else:
                raise
        if exc is not None and is_contention(exc):
            raise StorageBusyError() from exc

    async def commit(self) -> None:
        if self._session is None:
            raise RuntimeError("commit() outside `async with` of the unit of work")
        users = await self._outbox.flush()  # the transaction's last writes
        await self._session.commit()
        if self._bell is not None:
            self._bell.ring(users)


def _closes_at_once(session: AsyncSession) -> bool:
    """Whether closing `session` waits on nothing: no transaction, or one on a SQLite
    connection that holds no SQLite transaction (a unit of work that only read), whose
    rollbacks make no trip to aiosqlite's thread (persistence/db_sqlite.py). Asking
    waits on nothing either: a transaction with nothing pending got its connection
    when it began (only adding an object begins one without a connection)."""
    if not session.in_transaction():
        return True
    bind = session.bind
    if bind is None or bind.dialect.name != "sqlite" or session.new:
        return False
    # The synchronous session's connection(): the transaction's own, returned as it is
    # (no greenlet needed, as nothing is awaited).
    try:
        driver = session.sync_session.connection().connection.driver_connection
    except Exception:  # a transaction that cannot go on: the shielded close sorts it out
        return False
    return isinstance(driver, aiosqlite.Connection) and not driver.in_transaction


async def _discard(session: AsyncSession) -> None:
    """Invalidate the session's connections (closed at once, never back in the pool)."""
    try:
        await session.invalidate()
    except Exception:
        logger.debug("discarding a session of an unreachable database failed", exc_info=True)


# PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected, lock_not_available.
_PG_CONTENTION = frozenset({"40001", "40P01", "55P03"})
_SQLITE_CONTENTION = ("database is locked", "database table is locked", "database is busy")


def is_contention(exc: BaseException) -> bool:
    """Whether a database error means "busy, try again" rather than a bug."""
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if state in _PG_CONTENTION:
        return True
    text = str(original).lower()
    return any(marker in text for marker in _SQLITE_CONTENTION)


def make_uow_factory(
    session_factory: SessionFactory,
    *,
    timeout_s: float | None = None,
    bell: EventBell | None = None,
) -> UnitOfWorkFactory:
    """A UnitOfWorkFactory: each call gives a new, unopened SqlUnitOfWork; each one that
    runs past `timeout_s` fails as DatabaseUnavailableError; each commit that wrote
    events rings `bell`."""

    discarding: set[asyncio.Task[None]] = set()

    def factory() -> SqlUnitOfWork:
        return SqlUnitOfWork(session_factory, timeout_s=timeout_s, discarding=discarding, bell=bell)

    return factory
