"""EventDispatcher: one per process, it reads new events per user and hands them to the
feeds of that user.

Wake-ups say which users have new events: the in-process bell after a commit (SQLite,
and this replica on PostgreSQL) and `pg_notify` from every replica (PostgreSQL). They
only say when to look: the dispatcher reads the table after the user's position, so a
lost wake-up loses nothing, and every `poll_s` it looks for every user with a feed
anyway. Feeds of one user share each read (one query per woken user, not one per feed).

A feed's queue is bounded: a feed that falls `queue_size` events behind is marked
overflowed, its queue dropped, and it catches up from the table itself (feed.py).
Every `purge_every_s` the dispatcher deletes events older than the retention (plus
`PURGE_GRACE_S`, so a cursor judged fresh a moment ago still finds what follows it, and
replicas' clocks need not agree), at most `PURGE_BATCH` rows a statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from llamaql.ports.events import StoredEvent
from llamaql.ports.repositories import UnitOfWorkFactory

logger = logging.getLogger(__name__)

READ_BATCH = 100
QUEUE_SIZE = 256
PURGE_BATCH = 1000
PURGE_GRACE_S = 30.0


@dataclass(eq=False)
class Subscription:
    """One feed's share of the dispatcher: a bounded queue of its user's new events."""

    user_id: uuid.UUID
    queue_size: int
    queue: deque[StoredEvent] = field(default_factory=deque)
    overflowed: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: StoredEvent) -> None:
        if self.overflowed:
            return  # the feed reads the table when it gets there
        if len(self.queue) >= self.queue_size:
            self.overflowed = True
            self.queue.clear()
        else:
            self.queue.append(event)
        self.ready.set()

    async def take(self) -> list[StoredEvent] | None:
        """The queued events (oldest first), waiting for one; None: it overflowed (read
        the table from your cursor)."""
        while not self.queue and not self.overflowed:
            self.ready.clear()
            await self.ready.wait()
        if self.overflowed:
            self.overflowed = False
            return None
        events = list(self.queue)
        self.queue.clear()
        return events


@dataclass(eq=False)
class _UserFeeds:
    position: int  # the newest key handed to this user's feeds
    feeds: set[Subscription] = field(default_factory=set)


class EventDispatcher:
    """See the module docstring; `start()` in the app's lifespan, `stop()` at its end."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        retention_s: float,
        poll_s: float = 2.0,
        queue_size: int = QUEUE_SIZE,
        purge_every_s: float | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self.retention_s = retention_s
        self._poll_s = poll_s
        self._queue_size = queue_size
        self._purge_every_s = purge_every_s or min(60.0, max(1.0, retention_s / 4))
        self._users: dict[uuid.UUID, _UserFeeds] = {}
        self._woken: set[uuid.UUID] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self, user_ids: Collection[uuid.UUID]) -> None:
        """These users have new committed events (from the bell or a replica's notice)."""
        woken = [user for user in user_ids if user in self._users]
        if woken:
            self._woken.update(woken)
            self._wake.set()

    def subscribe(self, user_id: uuid.UUID, *, head: int) -> Subscription:
        """A new feed of `user_id`: it gets every event the dispatcher reads from now on
        (after `head`, the user's newest key the feed read, for a user new here)."""
        feeds = self._users.setdefault(user_id, _UserFeeds(position=head))
        subscription = Subscription(user_id, self._queue_size)
        feeds.feeds.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        feeds = self._users.get(subscription.user_id)
        if feeds is None:
            return
        feeds.feeds.discard(subscription)
        if not feeds.feeds:
            del self._users[subscription.user_id]

    def feeds(self) -> int:
        return sum(len(user.feeds) for user in self._users.values())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-dispatcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def dispatch(self, user_ids: Collection[uuid.UUID]) -> int:
        """Read and hand out the new events of these users; how many were read."""
        read = 0
        for user_id in user_ids:
            feeds = self._users.get(user_id)
            while feeds is not None:
                async with self._uow_factory() as uow:
                    events = await uow.events.after(
                        user_id=user_id, key=feeds.position, limit=READ_BATCH
                    )
                for event in events:
                    for subscription in list(feeds.feeds):
                        subscription.offer(event)
                if events:
                    feeds.position = max(feeds.position, events[-1].key)
                read += len(events)
                if len(events) < READ_BATCH:
                    break
                feeds = self._users.get(user_id)  # it may have left meanwhile
        return read

    async def purge(self) -> int:
        """Delete the events older than the retention (plus the grace); how many."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.retention_s + PURGE_GRACE_S)
        deleted = 0
        while True:
            async with self._uow_factory() as uow:
                count = await uow.events.delete_before(cutoff=cutoff, limit=PURGE_BATCH)
                await uow.commit()
            deleted += count
            if count < PURGE_BATCH:
                return deleted

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        purge_at = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            if not self._wake.is_set():  # a poll: everyone, in case a wake-up was lost
                self._woken.update(self._users)
            self._wake.clear()
            woken, self._woken = self._woken, set()
            try:
                await self.dispatch(woken)
                if loop.time() >= purge_at:
                    purge_at = loop.time() + self._purge_every_s
                    await self.purge()
            except Exception as exc:
                self._woken.update(woken)  # read again at the next poll
                logger.warning("event dispatch failed (retried in %gs): %s", self._poll_s, exc)
