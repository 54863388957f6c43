"""The live feed's outbox: events about a user's conversations, written in the same
transaction as the change they describe (`UnitOfWork.events`), and the wake-ups that
tell readers to look.

Every event has a `key` that orders the user's events in commit order (persistence
makes it so: SQLite has one writer; PostgreSQL takes a per-user advisory lock before an
event is inserted, so a later key is never committed before an earlier one of the same
user). Readers query by key; a wake-up only tells them when.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from llamaql.ports.values import MessageStatus


class EventKind(Enum):
    CONVERSATION_CREATED = "conversation_created"
    CONVERSATION_UPDATED = "conversation_updated"
    CONVERSATION_DELETED = "conversation_deleted"
    REPLY_QUEUED = "reply_queued"
    REPLY_STARTED = "reply_started"
    REPLY_FINISHED = "reply_finished"
    BRANCH_SELECTED = "branch_selected"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One committed event. `message_id`: the reply (reply events) or the new current
    leaf (BRANCH_SELECTED); `status`: a finished reply's stored status."""

    key: int
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    kind: EventKind
    created_at: datetime
    message_id: uuid.UUID | None = None
    status: MessageStatus | None = None


@dataclass(frozen=True, slots=True)
class ReplyRef:
    """Whose reply, in which conversation (what a bulk change of replies reports)."""

    user_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID


class EventRepository(Protocol):
    """The outbox of one unit of work. `record` is written at `commit()`, in the same
    transaction, after the change it describes; nothing is written on rollback."""

    def record(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        kind: EventKind,
        message_id: uuid.UUID | None = None,
        status: MessageStatus | None = None,
    ) -> None: ...

    async def after(self, *, user_id: uuid.UUID, key: int, limit: int) -> Sequence[StoredEvent]:
        """The user's events with a key above `key`, oldest first, at most `limit`."""
        ...

    async def head(self, *, user_id: uuid.UUID) -> int:
        """The user's newest committed key (0 when none): a feed that starts now reads
        after it, and no event of the user still uncommitted can have a key below it."""
        ...

    async def delete_before(self, *, cutoff: datetime, limit: int) -> int:
        """All users: delete at most `limit` of the events created before `cutoff`
        (oldest first); how many were deleted."""
        ...


UsersWoken = Callable[[Collection[uuid.UUID]], None]
"""Called with the users who have new committed events (may be called spuriously)."""


class EventBell:
    """In-process wake-up: a unit of work rings it after a commit that wrote events.

    Made by the composition root and given to the unit-of-work factory and to the
    dispatcher; it holds listeners only (no events), so a missed ring loses nothing.
    """

    def __init__(self) -> None:
        self._listeners: list[UsersWoken] = []

    def listen(self, listener: UsersWoken) -> None:
        self._listeners.append(listener)

    def ring(self, user_ids: Collection[uuid.UUID]) -> None:
        if not user_ids:
            return
        for listener in self._listeners:
            listener(user_ids)
