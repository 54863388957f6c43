"""SQL implementation of BranchRepository: the message tree of a conversation.

Messages point at their parent (`messages.parent_id`); a conversation points at the
newest message of its current branch (`conversations.current_leaf_id`). A branch is
read with a recursive CTE that climbs from a leaf to the root, so a conversation with
many alternatives costs one statement, not one per message. Every statement filters on
the user, at each step of the climb too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import CTE, ColumnElement, Select
from sqlalchemy import select as select_columns
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from llamaql.persistence.models import Conversation, Message, MessageStatus
from llamaql.persistence.repositories.rows import message_value
from llamaql.ports.values import Message as MessageValue

_PROMPT_STATUSES = (MessageStatus.COMPLETE.value, MessageStatus.CANCELLED.value)


def _climb(user_id: uuid.UUID, start: Select[uuid.UUID, uuid.UUID | None]) -> CTE:
    """The ids of `start`'s messages and of all their ancestors."""
    branch = start.cte("branch", recursive=True)
    parent = aliased(Message)
    return branch.union_all(
        select_columns(col(parent.id), col(parent.parent_id))
        .join(branch, col(parent.id) == branch.c.parent_id)
        .where(col(parent.user_id) == user_id)
    )


def on_branch_to(user_id: uuid.UUID, leaf_id: uuid.UUID) -> ColumnElement[bool]:
    """A filter on Message: the message is on the path from the root to `leaf_id`."""
    start = select_columns(col(Message.id), col(Message.parent_id)).where(
        col(Message.id) == leaf_id, col(Message.user_id) == user_id
    )
    return col(Message.id).in_(select(_climb(user_id, start).c.id))


def on_current_branch(
    user_id: uuid.UUID, conversation_ids: Sequence[uuid.UUID]
) -> ColumnElement[bool]:
    """A filter on Message: the message is on its conversation's current branch (for any
    of `conversation_ids`; one climb serves them all)."""
    start = (
        select_columns(col(Message.id), col(Message.parent_id))
        .join(Conversation, col(Conversation.current_leaf_id) == col(Message.id))
        .where(
            col(Conversation.id).in_(conversation_ids),
            col(Conversation.user_id) == user_id,
            col(Message.user_id) == user_id,
        )
    )
    return col(Message.id).in_(select(_climb(user_id, start).c.id))


class SqlBranchRepository:
    """Branches of one session; see services.ports.BranchRepository."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def history(
        self, *, user_id: uuid.UUID, leaf_id: uuid.UUID | None, limit: int | None = None
    ) -> Sequence[MessageValue]:
        if leaf_id is None:
            return []
        statement = (
            select(Message)
            .where(
                on_branch_to(user_id, leaf_id),
                col(Message.user_id) == user_id,
                col(Message.status).in_(_PROMPT_STATUSES),
            )
            .order_by(col(Message.seq).desc())
            .limit(limit)
        )
        result = await self._session.exec(statement)
        return [message_value(row) for row in reversed(result.all())]

    async def sibling_ids(
        self, *, user_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        if not message_ids:
            return {}
        sibling = aliased(Message)
        statement = (
            select(Message.id, sibling.id)
            .join(
                sibling,
                (col(sibling.conversation_id) == col(Message.conversation_id))
                & col(sibling.parent_id).is_not_distinct_from(col(Message.parent_id)),
            )
            .where(
                col(Message.id).in_(message_ids),
                col(Message.user_id) == user_id,
                col(sibling.user_id) == user_id,
            )
            .order_by(col(sibling.seq))
        )
        found: dict[uuid.UUID, list[uuid.UUID]] = {}
        for message_id, sibling_id in (await self._session.exec(statement)).all():
            found.setdefault(message_id, []).append(sibling_id)
        return found

    async def newest_leaf_under(
        self, *, user_id: uuid.UUID, message_id: uuid.UUID
    ) -> MessageValue | None:
        below = (
            select(Message.id, Message.seq)
            .where(col(Message.id) == message_id, col(Message.user_id) == user_id)
            .cte("below", recursive=True)
        )
        child = aliased(Message)
        below = below.union_all(
            select(child.id, child.seq)
            .join(below, col(child.parent_id) == below.c.id)
            .where(col(child.user_id) == user_id)
        )
        newest = select(below.c.id).order_by(below.c.seq.desc()).limit(1).scalar_subquery()
        statement = select(Message).where(col(Message.id) == newest)
        row = (await self._session.exec(statement)).one_or_none()
        return None if row is None else message_value(row)

    async def set_current_leaf(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, leaf_id: uuid.UUID
    ) -> bool:
        # Through the ORM, not an UPDATE statement: the conversation this unit of work
        # already loaded (and locked) must show the new leaf when it is read again.
        conversation = (
            await self._session.exec(
                select(Conversation).where(
                    col(Conversation.id) == conversation_id,
                    col(Conversation.user_id) == user_id,
                )
            )
        ).one_or_none()
        leaf = (
            await self._session.exec(
                select(Message.id).where(
                    col(Message.id) == leaf_id,
                    col(Message.user_id) == user_id,
                    col(Message.conversation_id) == conversation_id,
                )
            )
        ).first()
        if conversation is None or leaf is None:
            return False
        conversation.current_leaf_id = leaf_id
        await self._session.flush()
        return True
