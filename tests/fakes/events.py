"""The fake outbox: events recorded in a unit of work reach the store at commit, with
increasing keys (like the SQL one, nothing is written on rollback)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from llamaql.persistence.models import utc_now
from llamaql.ports.events import EventKind, StoredEvent
from llamaql.ports.values import MessageStatus

if TYPE_CHECKING:
    from tests.fakes.uow import FakeUnitOfWork


class FakeEventRepository:
    def __init__(self, unit: FakeUnitOfWork) -> None:
        self._unit = unit
        self.recorded: list[StoredEvent] = []

    def record(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        kind: EventKind,
        message_id: uuid.UUID | None = None,
        status: MessageStatus | None = None,
    ) -> None:
        self.recorded.append(
            StoredEvent(0, user_id, conversation_id, kind, utc_now(), message_id, status)
        )

    def flush(self) -> set[uuid.UUID]:
        """At commit: the recorded events get their keys and join the store."""
        store = self._unit.store
        recorded, self.recorded = self.recorded, []
        for event in recorded:
            store.event_key += 1
            store.events.append(
                StoredEvent(
                    store.event_key,
                    event.user_id,
                    event.conversation_id,
                    event.kind,
                    event.created_at,
                    event.message_id,
                    event.status,
                )
            )
        return {event.user_id for event in recorded}

    async def after(self, *, user_id: uuid.UUID, key: int, limit: int) -> Sequence[StoredEvent]:
        mine = [e for e in self._unit.store.events if e.user_id == user_id and e.key > key]
        return mine[:limit]

    async def head(self, *, user_id: uuid.UUID) -> int:
        return max((e.key for e in self._unit.store.events if e.user_id == user_id), default=0)

    async def delete_before(self, *, cutoff: datetime, limit: int) -> int:
        store = self._unit.store
        old = [e for e in store.events if e.created_at < cutoff][:limit]
        store.events = [e for e in store.events if e not in old]
        return len(old)
