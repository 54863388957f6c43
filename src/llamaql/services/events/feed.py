"""One `events` subscription: replay from a cursor, then live events, in key order.

A feed subscribes to the dispatcher first, then reads the table after its cursor in
bounded batches (so nothing committed between the two is missed), then takes what the
dispatcher hands it, skipping keys it already sent. A cursor older than the retention
(the events after it may be gone), or a feed that fell so far behind that its queue
overflowed past the retention, gets one `Reset(missed=True)` with a fresh cursor
instead: the client refetches. Without `since` the feed starts at the user's newest
event ("now") and says so first, with `Reset(missed=False)`: from then on every change
arrives as an event, so a client that (re)fetches its view after it misses nothing, and
it has a cursor to resume from before any event came.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from llamaql.ports.events import StoredEvent
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.services.events.cursors import EventCursor, decode_event_cursor
from llamaql.services.events.dispatcher import READ_BATCH, EventDispatcher


@dataclass(frozen=True, slots=True)
class Reset:
    """The feed is live from `cursor`; `missed`: events after the client's cursor may
    be lost (refetch what you show)."""

    cursor: EventCursor
    missed: bool


FeedItem = StoredEvent | Reset


def cursor_of(event: StoredEvent) -> EventCursor:
    return EventCursor(event.key, event.created_at)


class EventFeeds:
    """Opens feeds; a singleton (the dispatcher and the unit-of-work factory)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, dispatcher: EventDispatcher) -> None:
        self._uow_factory = uow_factory
        self._dispatcher = dispatcher

    async def feed(
        self, user_id: uuid.UUID, *, since: str | None
    ) -> AsyncGenerator[FeedItem, None]:
        """The user's events after `since` (BadInputError for a malformed one), then
        live ones, until the caller stops iterating."""
        start = decode_event_cursor(since) if since is not None else None
        head = await self._head(user_id)
        subscription = self._dispatcher.subscribe(user_id, head=head.key)
        try:
            cursor = start or head
            if start is None or self._expired(start):
                cursor = head
                yield Reset(head, missed=start is not None)
            while True:
                async for event in self._replay(user_id, cursor.key):
                    cursor = cursor_of(event)
                    yield event
                while (events := await subscription.take()) is not None:
                    for event in events:
                        if event.key > cursor.key:
                            cursor = cursor_of(event)
                            yield event
                # Overflowed: read the table from the cursor, unless it aged out meanwhile.
                if self._expired(cursor):
                    cursor = await self._head(user_id)
                    yield Reset(cursor, missed=True)
        finally:
            self._dispatcher.unsubscribe(subscription)

    def _expired(self, cursor: EventCursor) -> bool:
        oldest_kept = datetime.now(UTC) - timedelta(seconds=self._dispatcher.retention_s)
        return cursor.at < oldest_kept

    async def _head(self, user_id: uuid.UUID) -> EventCursor:
        async with self._uow_factory() as uow:
            key = await uow.events.head(user_id=user_id)
        return EventCursor(key, datetime.now(UTC))

    async def _replay(self, user_id: uuid.UUID, after: int) -> AsyncIterator[StoredEvent]:
        while True:
            async with self._uow_factory() as uow:
                events = await uow.events.after(user_id=user_id, key=after, limit=READ_BATCH)
            for event in events:
                yield event
            if len(events) < READ_BATCH:
                return
            after = events[-1].key
