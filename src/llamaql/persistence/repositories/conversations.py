"""SQL implementation of ConversationRepository: every statement filters on the user."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from llamaql.persistence.models import Conversation, Message, utc_now
from llamaql.persistence.repositories.rows import conversation_from_columns, conversation_value
from llamaql.ports.values import UPDATABLE_FIELDS, SamplingOptions
from llamaql.ports.values import Conversation as ConversationValue

# session.info key: (the transaction, its connection), for plain_rows.
_PLAIN_ROWS = "llamaql_plain_rows_connection"


async def plain_rows(session: AsyncSession) -> AsyncConnection:
    """The session's connection (its transaction), for statements read as plain rows;
    what the session holds unflushed is flushed first, as its own queries would. Kept
    for the transaction: asking the session again cost more than a short statement
    (about 12 us, a greenlet and the session's transaction machinery), and a read asks
    for it once per statement."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    held = session.info.get(_PLAIN_ROWS)
    transaction = session.sync_session.get_transaction()
    if held is not None and transaction is not None and held[0] is transaction:
        connection: AsyncConnection = held[1]
        return connection
    connection = await session.connection()
    session.info[_PLAIN_ROWS] = (session.sync_session.get_transaction(), connection)
    return connection


# Statements built once, with bound parameters: building one took longer than running it
# (about 0.2 ms each; a conversations page and its count went from 1.6 to 1.1 ms).
_OWNED = select(Conversation).where(
    col(Conversation.id) == bindparam("conversation_id"),
    col(Conversation.user_id) == bindparam("user_id"),
)
# Locked: after waiting for the lock, the row may have changed since this session last
# loaded it (populate_existing).
_OWNED_FOR_UPDATE = _OWNED.with_for_update().execution_options(populate_existing=True)
# SQLite's stand-in for a row lock: a no-op UPDATE takes the database's write lock, and
# returns the row as it is now (one statement for the lock and the read).
# (An UPDATE's parameters may not be named like its columns.)
_SQLITE_LOCK = (
    update(Conversation)
    .where(
        col(Conversation.id) == bindparam("lock_conversation_id"),
        col(Conversation.user_id) == bindparam("lock_user_id"),
    )
    .values(id=Conversation.id)
    .returning(Conversation)
    .execution_options(synchronize_session=False, populate_existing=True)
)
_NEWEST_FIRST = (col(Conversation.updated_at).desc(), col(Conversation.id).desc())
# Pages are read as plain rows (Core), not ORM instances: building 20 instances took
# most of a page's CPU, and a page's rows are never changed in its session.
_COLUMNS = tuple(Conversation.__table__.columns)  # type: ignore[attr-defined]
_OWNED_COLUMNS = sa_select(*_COLUMNS).where(
    col(Conversation.id) == bindparam("conversation_id"),
    col(Conversation.user_id) == bindparam("user_id"),
)
_PAGE = (
    sa_select(*_COLUMNS)
    .where(col(Conversation.user_id) == bindparam("user_id"))
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("limit"))
)
# After a cursor: spelled out rather than a row-value comparison so both SQLite and
# PostgreSQL use the (user_id, updated_at, id) index the same way; ids break ties.
_PAGE_AFTER = (
    sa_select(*_COLUMNS)
    .where(
        col(Conversation.user_id) == bindparam("user_id"),
        or_(
            col(Conversation.updated_at) < bindparam("after_updated_at"),
            and_(
                col(Conversation.updated_at) == bindparam("after_updated_at"),
                col(Conversation.id) < bindparam("after_id"),
            ),
        ),
    )
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("limit"))
)
_COUNT = (
    select(func.count())
    .select_from(Conversation)
    .where(col(Conversation.user_id) == bindparam("user_id"))
)


# session.info key: (the transaction, {(user id, conversation id): the locked row}).
_LOCKED = "llamaql_locked_conversations"


def holds_write_lock(session: AsyncSession) -> bool:
    """Whether this SQLite session's transaction holds the database's write lock, taken
    by locking a conversation (SQLite has one lock for every writer)."""
    return session.get_bind().dialect.name == "sqlite" and bool(_locked(session))


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
        lock = {"lock_user_id": user_id, "lock_conversation_id": conversation_id}
        conversation = (await session.exec(_SQLITE_LOCK, params=lock)).scalars().one_or_none()
    else:
        ids = {"user_id": user_id, "conversation_id": conversation_id}
        conversation = (await session.exec(_OWNED_FOR_UPDATE, params=ids)).one_or_none()
    if conversation is not None:
        _locked(session)[(user_id, conversation_id)] = conversation
    return conversation


class SqlConversationRepository:
    """Conversations of one session; see services.ports.ConversationRepository. Rows stay
    here (the session's, so a locked one is found again); callers get values."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        *,
        user_id: uuid.UUID,
        title: str | None,
        system_prompt: str | None,
        options: SamplingOptions,
        model: str | None = None,
    ) -> ConversationValue:
        now = utc_now()
        conversation = Conversation(
            user_id=user_id,
            model=model,
            title=title,
            system_prompt=system_prompt,
            options=options.to_dict(),
            created_at=now,
            updated_at=now,
        )
        self._session.add(conversation)
        await self._session.flush()
        return conversation_value(conversation)

    async def get(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationValue | None:
        held = _locked(self._session).get((user_id, conversation_id))
        if held is not None:  # locked here: its changes may not be written yet
            return conversation_value(held)
        # A plain row on the session's connection (its transaction), like a page: the
        # ORM's execution and instance for one read cost more than the statement (every
        # send reads its conversation first).
        connection = await plain_rows(self._session)
        ids = {"user_id": user_id, "conversation_id": conversation_id}
        row = (await connection.execute(_OWNED_COLUMNS, ids)).one_or_none()
        return None if row is None else conversation_from_columns(row._mapping)

    async def _owned(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> Conversation | None:
        ids = {"user_id": user_id, "conversation_id": conversation_id}
        result = await self._session.exec(_OWNED, params=ids)
        return result.one_or_none()

    async def get_for_update(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationValue | None:
        row = await lock_owned_conversation(
            self._session, user_id=user_id, conversation_id=conversation_id
        )
        return None if row is None else conversation_value(row)

    async def list_page(
        self, *, user_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[ConversationValue]:
        params: dict[str, Any] = {"user_id": user_id, "limit": limit}
        statement = _PAGE
        if after is not None:
            statement = _PAGE_AFTER
            params["after_updated_at"], params["after_id"] = after
        # On the session's connection (its transaction), past the ORM's result handling.
        connection = await plain_rows(self._session)
        result = await connection.execute(statement, params)
        return [conversation_from_columns(row._mapping) for row in result.all()]

    async def count(self, *, user_id: uuid.UUID) -> int:
        # Core on the session's connection, like the page: the ORM's execution path
        # cost more than the count.
        connection = await plain_rows(self._session)
        result = await connection.execute(_COUNT, {"user_id": user_id})
        return int(result.scalar_one())

    async def update(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, changes: dict[str, Any]
    ) -> ConversationValue | None:
        not_updatable = set(changes) - UPDATABLE_FIELDS
        if not_updatable:
            raise AttributeError(
                f"cannot update Conversation column(s) {sorted(not_updatable)}; "
                f"updatable: {sorted(UPDATABLE_FIELDS)}"
            )
        conversation = _locked(self._session).get((user_id, conversation_id))
        if conversation is None:
            conversation = await self._owned(user_id, conversation_id)
        if conversation is None:
            return None
        for name, value in changes.items():
            # Options are stored as a new dict (JSON columns do not track mutation).
            setattr(conversation, name, value.to_dict() if name == "options" else value)
        conversation.updated_at = utc_now()
        await self._session.flush()
        return conversation_value(conversation)

    async def touch(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        await self.update(user_id=user_id, conversation_id=conversation_id, changes={})

    async def delete(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
        conversation = await self._owned(user_id, conversation_id)
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
