"""An in-memory BranchRepository over a fake unit of work's pending view (see uow.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llamaql.persistence.models import Message, MessageStatus
from llamaql.persistence.repositories.rows import message_value
from llamaql.ports import values

if TYPE_CHECKING:
    from tests.fakes.uow import FakeUnitOfWork

_PROMPT_STATUSES = (MessageStatus.COMPLETE.value, MessageStatus.CANCELLED.value)


def branch_to(rows: Sequence[Message], leaf_id: uuid.UUID | None) -> list[Message]:
    """The path from the root to `leaf_id` among `rows` (one user's), oldest first."""
    by_id = {m.id: m for m in rows}
    path: list[Message] = []
    current = by_id.get(leaf_id) if leaf_id is not None else None
    while current is not None:
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id is not None else None
    return path[::-1]


class FakeBranchRepository:
    """BranchRepository over a unit of work's pending view: rows inside, values out."""

    def __init__(self, unit: FakeUnitOfWork) -> None:
        self._unit = unit

    def _mine(self, user_id: uuid.UUID) -> list[Message]:
        return [m for m in self._unit.pending.all_messages() if m.user_id == user_id]

    async def history(
        self, *, user_id: uuid.UUID, leaf_id: uuid.UUID | None, limit: int | None = None
    ) -> Sequence[values.Message]:
        kept = [m for m in branch_to(self._mine(user_id), leaf_id) if m.status in _PROMPT_STATUSES]
        if limit is not None:
            kept = kept[-limit:] if limit else []
        return [message_value(m) for m in kept]

    async def sibling_ids(
        self, *, user_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        mine = sorted(self._mine(user_id), key=lambda m: m.seq)
        by_id = {m.id: m for m in mine}
        return {
            message_id: [
                s.id
                for s in mine
                if s.conversation_id == message.conversation_id and s.parent_id == message.parent_id
            ]
            for message_id in message_ids
            if (message := by_id.get(message_id)) is not None
        }

    async def newest_leaf_under(
        self, *, user_id: uuid.UUID, message_id: uuid.UUID
    ) -> values.Message | None:
        mine = self._mine(user_id)
        below = {m.id for m in mine if m.id == message_id}
        grew = True
        while grew:
            children = {m.id for m in mine if m.parent_id in below} - below
            grew = bool(children)
            below |= children
        newest = max((m for m in mine if m.id in below), key=lambda m: m.seq, default=None)
        return None if newest is None else message_value(newest)

    async def set_current_leaf(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, leaf_id: uuid.UUID
    ) -> bool:
        conversation = self._unit.pending.conversation(conversation_id)
        leaf = self._unit.pending.message(leaf_id)
        if (
            conversation is None
            or conversation.user_id != user_id
            or leaf is None
            or leaf.user_id != user_id
            or leaf.conversation_id != conversation_id
        ):
            return False
        self._unit.pending.conversations[conversation_id] = conversation.model_copy(
            update={"current_leaf_id": leaf_id}
        )
        return True
