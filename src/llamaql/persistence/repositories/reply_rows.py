"""The statements that move a reply while it generates and after: its final save, its
checkpoints, its replica's heartbeat and the recovery of replies whose replica stopped.
Each writes only a reply still GENERATING (and, given one, still its replica's)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from llamaql.persistence.models import Message, MessageStatus, utc_now
from llamaql.persistence.repositories.rows import message_value, write_usage
from llamaql.ports.events import ReplyRef
from llamaql.ports.values import Message as MessageValue
from llamaql.ports.values import Usage

INTERRUPTED = "interrupted"


class ReplyRowStatements:
    """A session's statements on generating replies (part of SqlMessageRepository)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def finish(
        self,
        *,
        user_id: uuid.UUID,
        message_id: uuid.UUID,
        text: str,
        status: MessageStatus,
        finish_reason: str | None,
        usage: Usage | None,
        dropped_messages: int | None,
        replica_id: str | None = None,
    ) -> MessageValue | None:
        # Locked, so a concurrent recovery sweep either runs before (and this finds the
        # reply no longer GENERATING) or waits and then skips the finished reply.
        statement = (
            select(Message)
            .where(*self._still_generating(user_id, message_id, replica_id))
            .with_for_update()
        )
        message = (await self._session.exec(statement)).one_or_none()
        if message is None:
            return None
        message.text = text
        message.status = status.value
        message.finish_reason = finish_reason
        message.dropped_messages = dropped_messages
        if usage is not None:
            write_usage(message, usage)
        message.updated_at = utc_now()
        await self._session.flush()
        return message_value(message)

    async def checkpoint(
        self,
        *,
        user_id: uuid.UUID,
        message_id: uuid.UUID,
        text: str,
        replica_id: str | None = None,
    ) -> bool:
        statement = (
            update(Message)
            .where(*self._still_generating(user_id, message_id, replica_id))
            .values(text=text, updated_at=utc_now())
            .execution_options(synchronize_session=False)
        )
        result = await self._session.exec(statement)
        return bool(result.rowcount)

    def _still_generating(
        self, user_id: uuid.UUID, message_id: uuid.UUID, replica_id: str | None
    ) -> list[ColumnElement[bool]]:
        conditions = [
            col(Message.id) == message_id,
            col(Message.user_id) == user_id,
            col(Message.status) == MessageStatus.GENERATING.value,
        ]
        if replica_id is not None:
            conditions.append(col(Message.replica_id) == replica_id)
        return conditions

    @property
    def _postgres(self) -> bool:
        return self._session.get_bind().dialect.name == "postgresql"

    def _now(self) -> Any:
        """PostgreSQL's clock, so replicas on different hosts stamp and compare heartbeats
        by one clock; SQLite is one machine, and its CURRENT_TIMESTAMP has no fraction."""
        if self._session.get_bind().dialect.name == "postgresql":
            return func.now()
        return utc_now()

    async def beat(self, *, replica_id: str, message_ids: Collection[uuid.UUID]) -> int:
        if not message_ids:
            return 0
        statement = (
            update(Message)
            .where(
                col(Message.id).in_(list(message_ids)),
                col(Message.replica_id) == replica_id,
                col(Message.status) == MessageStatus.GENERATING.value,
            )
            .values(heartbeat_at=self._now())
            .execution_options(synchronize_session=False)
        )
        result = await self._session.exec(statement)
        return result.rowcount

    async def mark_interrupted(
        self, *, dead_after_s: float | None = None, replica_id: str | None = None
    ) -> list[ReplyRef]:
        # The one statement not scoped to a user: recovery for every user.
        generating = col(Message.status) == MessageStatus.GENERATING.value
        if dead_after_s is None:
            which = generating
        else:
            stopped = or_(
                col(Message.heartbeat_at).is_(None),
                col(Message.heartbeat_at) < self._now() - timedelta(seconds=dead_after_s),
            )
            if replica_id is not None:  # this replica's earlier life, under the same id
                stopped = or_(stopped, col(Message.replica_id) == replica_id)
            which = and_(generating, stopped)
        statement = (
            update(Message)
            .where(which)
            .values(
                status=MessageStatus.FAILED.value,
                finish_reason=INTERRUPTED,
                updated_at=utc_now(),
            )
            .returning(col(Message.id), col(Message.user_id), col(Message.conversation_id))
            .execution_options(synchronize_session=False)
        )
        rows = (await self._session.exec(statement)).all()
        return [ReplyRef(user, conversation, message) for message, user, conversation in rows]
