"""SQL implementation of ConversationRepository: every statement filters on the user."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from llamaql.models import Conversation, Message, utc_now

UPDATABLE_COLUMNS = frozenset({"title", "system_prompt", "options"})
"""What `update` may change; ids, owner and timestamps are the repository's business."""


def _owned(user_id: uuid.UUID, conversation_id: uuid.UUID) -> SelectOfScalar[Conversation]:
    return select(Conversation).where(
        col(Conversation.id) == conversation_id, col(Conversation.user_id) == user_id
    )


def _after(key: tuple[datetime, uuid.UUID]) -> ColumnElement[bool]:
    # Spelled out rather than a row-value comparison so both SQLite and PostgreSQL use
    # the (user_id, updated_at, id) index the same way; ids break updated_at ties.
    updated_at, conversation_id = key
    return or_(
        col(Conversation.updated_at) < updated_at,
        and_(
            col(Conversation.updated_at) == updated_at,
            col(Conversation.id) < conversation_id,
        ),
    )


# session.info key: (the transaction, {(user id, conversation id): the locked row}).
_LOCKED = "llamaql_locked_conversations"


def _locked(session: AsyncSession) -> dict[tuple[uuid.UUID, uuid.UUID], Conversation]:
    """The conversations this session locked in its current transaction (a new, empty
    record when the transaction is new; outside a transaction, one nobody keeps)."""
    transaction = session.sync_session.get_transaction()
    if transaction is None:
        return {}
    held = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = session.info[_LOCKED] = (transaction, {})
    locked: dict[tuple[uuid.UUID, uuid.UUID], Conversation] = held[1]
    return locked


async def lock_owned_conversation(
    session: AsyncSession, *, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> Conversation | None:
    """Load the user's conversation and lock it until the transaction ends.

    PostgreSQL locks the row (FOR UPDATE). SQLite has no row locks: a no-op UPDATE
    takes its database write lock instead, so a second writer waits (busy timeout)
    rather than acting on what it read before the first one committed. A conversation
    this transaction has already locked is returned as loaded, without a statement:
    nobody else can have changed it since (storing an exchange locks it three times).
    """
    held = _locked(session).get((user_id, conversation_id))
    if held is not None:
        return held
    if session.get_bind().dialect.name == "sqlite":
        await session.exec(
            update(Conversation)
            .where(col(Conversation.id) == conversation_id, col(Conversation.user_id) == user_id)
            .values(id=Conversation.id)
            .execution_options(synchronize_session=False)
        )
    # populate_existing: after waiting for the lock, the row may have changed since
    # this session last loaded it.
    statement = (
        _owned(user_id, conversation_id).with_for_update().execution_options(populate_existing=True)
    )
    conversation = (await session.exec(statement)).one_or_none()
    if conversation is not None:
        _locked(session)[(user_id, conversation_id)] = conversation
    return conversation


class SqlConversationRepository:
    """Conversations of one session; see services.ports.ConversationRepository."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        *,
        user_id: uuid.UUID,
        title: str | None,
        system_prompt: str | None,
        options: dict[str, Any],
    ) -> Conversation:
        now = utc_now()
        conversation = Conversation(
            user_id=user_id,
            title=title,
            system_prompt=system_prompt,
            options=dict(options),
            created_at=now,
            updated_at=now,
        )
        self._session.add(conversation)
        await self._session.flush()
        return conversation

    async def get(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> Conversation | None:
        result = await self._session.exec(_owned(user_id, conversation_id))
        return result.one_or_none()

    async def get_for_update(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> Conversation | None:
        return await lock_owned_conversation(
            self._session, user_id=user_id, conversation_id=conversation_id
        )

    async def list_page(
        self, *, user_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[Conversation]:
        statement = select(Conversation).where(col(Conversation.user_id) == user_id)
        if after is not None:
            statement = statement.where(_after(after))
        statement = statement.order_by(
            col(Conversation.updated_at).desc(), col(Conversation.id).desc()
        ).limit(limit)
        result = await self._session.exec(statement)
        return result.all()

    async def count(self, *, user_id: uuid.UUID) -> int:
        statement = (
            select(func.count())
            .select_from(Conversation)
            .where(col(Conversation.user_id) == user_id)
        )
        result = await self._session.exec(statement)
        return result.one()

    async def update(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, changes: dict[str, Any]
    ) -> Conversation | None:
        not_updatable = set(changes) - UPDATABLE_COLUMNS
        if not_updatable:
            raise AttributeError(
                f"cannot update Conversation column(s) {sorted(not_updatable)}; "
                f"updatable: {sorted(UPDATABLE_COLUMNS)}"
            )
        conversation = _locked(self._session).get((user_id, conversation_id))
        if conversation is None:
            conversation = await self.get(user_id=user_id, conversation_id=conversation_id)
        if conversation is None:
            return None
        for name, value in changes.items():
            # A new dict for options: JSON columns do not track in-place mutation.
            setattr(conversation, name, dict(value) if name == "options" else value)
        conversation.updated_at = utc_now()
        await self._session.flush()
        return conversation

    async def touch(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        await self.update(user_id=user_id, conversation_id=conversation_id, changes={})

    async def delete(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
        conversation = await self.get(user_id=user_id, conversation_id=conversation_id)
        if conversation is None:
            return False
        # Explicit, not left to ON DELETE CASCADE: SQLite only cascades on connections
        # with the foreign_keys pragma on, and a stray connection might not have it.
        await self._session.exec(
            delete(Message).where(col(Message.conversation_id) == conversation_id)
        )
        await self._session.delete(conversation)
        await self._session.flush()
        return True
