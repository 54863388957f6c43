"""SQL implementation of MessageRepository: every statement filters on the user."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, false, func, literal, update
from sqlmodel import select

from llamaql.persistence.models import Message, MessageKind, MessageStatus, utc_now
from llamaql.persistence.repositories import message_statements as sql
from llamaql.persistence.repositories.conversations import (
    holds_write_lock,
    lock_owned_conversation,
    plain_rows,
)
from llamaql.persistence.repositories.reply_rows import ReplyRowStatements
from llamaql.persistence.repositories.rows import (
    message_from_columns,
    message_from_page_row,
    message_value,
)
from llamaql.ports.repositories import AFTER_CURRENT_LEAF, Append
from llamaql.ports.values import Message as MessageValue

USER_REPLIES_LOCK_SPACE = 0x6C716C72
"""The first key of `lock_user_replies`' two-key advisory locks (the user's hash is the
second); two-key locks never collide with the one-key migration lock."""


def user_lock_key(user_id: uuid.UUID) -> int:
    """A user's 32-bit advisory lock key: two users sharing one only wait for each other."""
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)


class SqlMessageRepository(ReplyRowStatements):
    """Messages of one session; see services.ports.MessageRepository (the statements
    that move a reply while it generates are ReplyRowStatements')."""

    async def add(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        parent_id: uuid.UUID | Append | None = AFTER_CURRENT_LEAF,
        kind: MessageKind,
        text: str,
        status: MessageStatus,
        replica_id: str | None = None,
        model: str | None = None,
    ) -> MessageValue:
        # Locking the conversation checks ownership and keeps concurrent appends to it
        # from reading the same max(seq).
        conversation = await lock_owned_conversation(
            self._session, user_id=user_id, conversation_id=conversation_id
        )
        if conversation is None:
            raise LookupError(f"conversation {conversation_id} not found for this user")
        now = utc_now()
        params = {
            "m_id": uuid.uuid4(),
            "m_conversation_id": conversation_id,
            "m_user_id": user_id,
            "m_parent_id": conversation.current_leaf_id
            if parent_id is AFTER_CURRENT_LEAF
            else parent_id,
            "m_kind": int(kind),
            "m_text": text,
            "m_status": status.value,
            "m_now": now,
            "m_replica_id": replica_id,
            "m_model": model,
        }
        statement = sql.INSERT
        if replica_id is not None and self._postgres:
            statement = sql.INSERT_BEATING_NOW  # PostgreSQL's clock for heartbeats
        else:
            params["m_heartbeat_at"] = now if replica_id is not None else None
        # On the session's connection (its transaction), so nothing is flushed first: the
        # conversation's new leaf is written with the transaction's next change of the
        # row (the reply's leaf, the activity time), one UPDATE for all.
        connection = await self._session.connection()
        row = (await connection.execute(statement, params)).one()
        message = message_from_columns(row._mapping)
        conversation.current_leaf_id = message.id  # the new message's branch is current
        return message

    async def get(self, *, user_id: uuid.UUID, message_id: uuid.UUID) -> MessageValue | None:
        params = {"message_id": message_id, "user_id": user_id}
        row = (await self._session.exec(sql.GET, params=params)).one_or_none()
        return None if row is None else message_value(row)

    async def list_page(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        limit: int,
        after_seq: int | None,
    ) -> Sequence[MessageValue]:
        # The loader's statement for one conversation: one query path to test and keep.
        pages = await self.list_pages(
            user_id=user_id, after_seqs={conversation_id: after_seq}, limit=limit
        )
        return pages[conversation_id]

    async def list_pages(
        self,
        *,
        user_id: uuid.UUID,
        after_seqs: Mapping[uuid.UUID, int | None],
        limit: int,
    ) -> dict[uuid.UUID, list[MessageValue]]:
        # One statement for every conversation of a GraphQL response: each conversation's
        # messages are numbered in seq order after its cursor, and the first `limit` kept.
        if not after_seqs:
            return {}
        params: dict[str, Any] = {
            "user_id": user_id,
            "conversation_ids": list(after_seqs),
            "limit": limit,
        }
        for index, (conversation_id, after_seq) in enumerate(after_seqs.items()):
            params[f"c{index}"] = conversation_id
            if after_seq is not None:
                params[f"a{index}"] = after_seq
        shape = tuple(after_seq is not None for after_seq in after_seqs.values())
        # On the session's connection (its transaction), as plain rows: building a page's
        # ORM instances cost more than the rest of its read, and nothing changes them.
        connection = await plain_rows(self._session)
        rows = (await connection.execute(sql.pages_statement(shape), params)).all()
        if len(after_seqs) == 1:  # every row is that conversation's (the statement's filter)
            (only,) = after_seqs
            return {only: [message_from_page_row(row, only, user_id) for row in rows]}
        pages: dict[uuid.UUID, list[MessageValue]] = {key: [] for key in after_seqs}
        for row in rows:
            conversation_id = row[-1]  # the last column where there are several
            pages[conversation_id].append(message_from_page_row(row, conversation_id, user_id))
        return pages

    async def counts(
        self, *, user_id: uuid.UUID, conversation_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        params = {"user_id": user_id, "conversation_ids": list(conversation_ids)}
        # Core on the session's connection, like the pages it counts.
        connection = await plain_rows(self._session)
        rows = (await connection.execute(sql.COUNTS, params)).all()
        if len(conversation_ids) == 1:  # one row at most, that conversation's
            (only,) = conversation_ids
            return {only: int(rows[0][1]) if rows else 0}
        found = {conversation_id: int(total) for conversation_id, total in rows}
        return {
            conversation_id: found.get(conversation_id, 0) for conversation_id in conversation_ids
        }

    async def has_generating(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
        params = {"conversation_id": conversation_id, "user_id": user_id}
        result = await self._session.exec(sql.GENERATING, params=params)
        return result.first() is not None

    async def count_and_generating(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> tuple[int, bool]:
        params = {"conversation_id": conversation_id, "user_id": user_id}
        total, generating = await self._one(sql.COUNT_AND_GENERATING, params)
        return int(total), bool(generating)

    async def lock_user_replies(self, *, user_id: uuid.UUID) -> None:
        if self._session.get_bind().dialect.name == "postgresql":
            # Held until commit; under READ COMMITTED a count after it sees the rows the
            # previous holder committed.
            key = user_lock_key(user_id)
            lock = func.pg_advisory_xact_lock(
                literal(USER_REPLIES_LOCK_SPACE, Integer), literal(key, Integer)
            )
            await self._session.exec(select(lock))
            return
        # SQLite has one writer: an UPDATE, even of no row, takes the write lock until
        # the transaction ends, so a second unit waits here (busy timeout). A unit that
        # locked a conversation holds that lock already.
        if holds_write_lock(self._session):
            return
        await self._session.exec(
            update(Message)
            .where(false())
            .values(id=Message.id)
            .execution_options(synchronize_session=False)
        )

    async def count_live_replies(
        self, *, user_id: uuid.UUID, alive_within_s: float | None = None
    ) -> int:
        statement, params = self._by_clock(sql.LIVE_REPLIES, user_id, alive_within_s)
        (live,) = await self._one(statement, params)
        return int(live)

    async def exchange_counts(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        alive_within_s: float | None = None,
    ) -> tuple[int, bool, int]:
        statement, params = self._by_clock(sql.EXCHANGE_COUNTS, user_id, alive_within_s)
        params["conversation_id"] = conversation_id
        total, generating, live = await self._one(statement, params)
        return int(total), bool(generating), int(live)

    async def _one(self, statement: Any, params: dict[str, Any]) -> Any:
        """The one row of a counting statement, run as Core on the session's connection
        (its transaction): the ORM's execution path cost more than the count itself."""
        connection = await self._session.connection()
        return (await connection.execute(statement, params)).one()

    def _by_clock(
        self, variants: sql.ByClock, user_id: uuid.UUID, alive_within_s: float | None
    ) -> tuple[Any, dict[str, Any]]:
        """The variant of a live-replies count for `alive_within_s` on this database,
        with its parameters."""
        params: dict[str, Any] = {"user_id": user_id}
        if alive_within_s is None:
            return variants.plain, params
        if self._postgres:
            params["alive_for"] = timedelta(seconds=alive_within_s)
            return variants.for_, params
        params["alive_since"] = utc_now() - timedelta(seconds=alive_within_s)
        return variants.since, params
