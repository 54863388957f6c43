"""SqlUnitOfWork: one short session, rolled back on exit unless committed.

Contention the database could not wait out (SQLite's "database is locked", PostgreSQL's
serialization failures, deadlocks and lock timeouts) leaves the unit of work as the
domain's StorageBusyError, a retryable QUEUE_FULL, never INTERNAL.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from llamaql.db import SessionFactory
from llamaql.repositories.branches import SqlBranchRepository
from llamaql.repositories.conversations import SqlConversationRepository
from llamaql.repositories.messages import SqlMessageRepository
from llamaql.repositories.search import SqlSearchRepository
from llamaql.services.errors import StorageBusyError
from llamaql.services.ports import (
    BranchRepository,
    ConversationRepository,
    MessageRepository,
    SearchRepository,
    UnitOfWorkFactory,
)


class SqlUnitOfWork:
    """A UnitOfWork over one AsyncSession; use once, as `async with`."""

    conversations: ConversationRepository
    messages: MessageRepository
    branches: BranchRepository
    search: SearchRepository

    def __init__(self, session_factory: SessionFactory) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open; create a new one")
        self._session = self._session_factory()
        self.conversations = SqlConversationRepository(self._session)
        self.messages = SqlMessageRepository(self._session)
        self.branches = SqlBranchRepository(self._session)
        self.search = SqlSearchRepository(self._session)
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
        # close() detaches every loaded object before it rolls back whatever was not
        # committed: a rollback() first would expire the objects this unit of work
        # returned, and reading them afterwards would fail (they are detached).
        # Shielded: a request cancelled meanwhile (a client gone, graphql-core cancelling
        # a failed query's other fields) would cut the pool's rollback in half, and the
        # connection would be dropped with an error logged; the close finishes anyway and
        # the cancellation still reaches the caller.
        await asyncio.shield(session.close())
        if exc is not None and is_contention(exc):
            raise StorageBusyError() from exc

    async def commit(self) -> None:
        if self._session is None:
            raise RuntimeError("commit() outside `async with` of the unit of work")
        await self._session.commit()


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


def make_uow_factory(session_factory: SessionFactory) -> UnitOfWorkFactory:
    """A UnitOfWorkFactory: each call gives a new, unopened SqlUnitOfWork."""

    def factory() -> SqlUnitOfWork:
        return SqlUnitOfWork(session_factory)

    return factory
