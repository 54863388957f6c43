"""SqlUnitOfWork: one short session, rolled back on exit unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlmodel.ext.asyncio.session import AsyncSession

from llamaql.db import SessionFactory
from llamaql.repositories.conversations import SqlConversationRepository
from llamaql.repositories.messages import SqlMessageRepository
from llamaql.repositories.search import SqlSearchRepository
from llamaql.services.ports import (
    ConversationRepository,
    MessageRepository,
    SearchRepository,
    UnitOfWorkFactory,
)


class SqlUnitOfWork:
    """A UnitOfWork over one AsyncSession; use once, as `async with`."""

    conversations: ConversationRepository
    messages: MessageRepository
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
        await session.close()

    async def commit(self) -> None:
        if self._session is None:
            raise RuntimeError("commit() outside `async with` of the unit of work")
        await self._session.commit()


def make_uow_factory(session_factory: SessionFactory) -> UnitOfWorkFactory:
    """A UnitOfWorkFactory: each call gives a new, unopened SqlUnitOfWork."""

    def factory() -> SqlUnitOfWork:
        return SqlUnitOfWork(session_factory)

    return factory
