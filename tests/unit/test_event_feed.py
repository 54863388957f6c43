"""The live feed on the fake unit of work: one dispatcher read per woken user however
many feeds it has, replay then live without a gap or a repeat, a slow feed's bounded
queue, a lost wake-up found by the poll, expiry, and the purge."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import pytest
from tests.eventually import eventually
from tests.fakes.uow import FakeStore, FakeUnitOfWork

from llamaql.persistence.models import utc_now
from llamaql.ports.errors import BadInputError
from llamaql.ports.events import EventBell, EventKind, StoredEvent
from llamaql.ports.values import MessageKind, MessageStatus, SamplingOptions
from llamaql.services.events.cursors import EventCursor
from llamaql.services.events.dispatcher import PURGE_GRACE_S, EventDispatcher
from llamaql.services.events.feed import EventFeeds, FeedItem, Reset, cursor_of
from llamaql.services.replicas import SingleProcess, recover_interrupted

ALICE, BOB = uuid.uuid4(), uuid.uuid4()


class Counted:
    """A unit-of-work factory over `store` that counts the units opened."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.opened = 0

    def __call__(self) -> FakeUnitOfWork:
        self.opened += 1
        return FakeUnitOfWork(self.store)


@asynccontextmanager
async def running(
    *, bell: bool = True, queue_size: int = 256, poll_s: float = 60.0, retention_s: float = 300
) -> AsyncIterator[tuple[Counted, EventDispatcher, EventFeeds]]:
    store = FakeStore()
    factory = Counted(store)
    dispatcher = EventDispatcher(
        factory, retention_s=retention_s, poll_s=poll_s, queue_size=queue_size
    )
    if bell:
        store.bell = EventBell()
        store.bell.listen(dispatcher.wake)
    dispatcher.start()
    try:
        yield factory, dispatcher, EventFeeds(factory, dispatcher)
    finally:
        await dispatcher.stop()


async def change(factory: Counted, user: uuid.UUID, count: int = 1) -> None:
    async with factory() as unit:
        for _ in range(count):
            unit.events.record(
                user_id=user, conversation_id=uuid.uuid4(), kind=EventKind.CONVERSATION_CREATED
            )
        await unit.commit()


async def take(feed: AsyncGenerator[FeedItem, None], count: int) -> list[FeedItem]:
    async with asyncio.timeout(30):
        return [await anext(feed) for _ in range(count)]


def keys(items: list[FeedItem]) -> list[int]:
    return [item.key for item in items if isinstance(item, StoredEvent)]


async def test_feeds_of_one_user_share_each_read_and_others_hear_nothing() -> None:
    async with running(bell=False) as (factory, dispatcher, feeds):
        first = feeds.feed(ALICE, since=None)
        second = feeds.feed(ALICE, since=None)
        bobs = feeds.feed(BOB, since=None)
        opened = await take(first, 1) + await take(second, 1) + await take(bobs, 1)
        assert all(isinstance(item, Reset) and not item.missed for item in opened)
        # Each feed replays (nothing yet) and waits for the dispatcher.
        a = asyncio.create_task(take(first, 3))
        b = asyncio.create_task(take(second, 3))
        await eventually(lambda: factory.opened == 5)
        await change(factory, ALICE, 3)
        # One read for both feeds of the user; none for Bob, who has no new event.
        assert await dispatcher.dispatch([ALICE, BOB]) == 3
        assert factory.opened == 5 + 1 + 2
        assert keys(await a) == keys(await b) == [1, 2, 3]
        assert factory.opened == 8
        await change(factory, BOB)
        await dispatcher.dispatch([BOB])
        assert keys(await take(bobs, 1)) == [4]
        for feed in (first, second, bobs):
            await feed.aclose()
        assert dispatcher.feeds() == 0


async def test_since_replays_what_came_after_it_then_goes_live_without_repeats() -> None:
    async with running() as (factory, _, feeds):
        await change(factory, ALICE, 5)
        async with factory() as unit:
            third = (await unit.events.after(user_id=ALICE, key=2, limit=1))[0]
        feed = feeds.feed(ALICE, since=cursor_of(third).encode())
        replayed = await take(feed, 2)
        await change(factory, ALICE, 2)
        live = await take(feed, 2)
        await feed.aclose()
    assert keys(replayed) == [4, 5]
    assert keys(live) == [6, 7]


async def test_a_feed_that_reads_slowly_catches_up_from_the_table() -> None:
    async with running(queue_size=2) as (factory, dispatcher, feeds):
        feed = feeds.feed(ALICE, since=None)
        await take(feed, 1)
        await change(factory, ALICE, 5)  # more than its queue holds, before it reads
        await eventually(lambda: factory.store.event_key == 5)
        await dispatcher.dispatch([ALICE])
        items = await take(feed, 5)
        await change(factory, ALICE)
        items += await take(feed, 1)
        await feed.aclose()
    assert keys(items) == [1, 2, 3, 4, 5, 6]


async def test_a_slow_feed_past_the_retention_gets_a_reset() -> None:
    async with running(bell=False, queue_size=1, retention_s=60) as (factory, dispatcher, feeds):
        feed = feeds.feed(ALICE, since=None)
        await take(feed, 1)
        first = asyncio.create_task(take(feed, 1))
        await eventually(lambda: factory.opened == 2)  # its head, its replay
        await change(factory, ALICE)
        # The event it gets is already older than the retention (a feed that read slowly).
        store = factory.store
        store.events = [
            replace(e, created_at=e.created_at - timedelta(seconds=120)) for e in store.events
        ]
        await dispatcher.dispatch([ALICE])
        assert keys(await first) == [1]
        await change(factory, ALICE, 2)  # more than its queue holds
        await dispatcher.dispatch([ALICE])
        reset = await take(feed, 1)
        await feed.aclose()
    assert isinstance(reset[0], Reset)
    assert reset[0].missed
    assert reset[0].cursor.key == 3


async def test_without_a_wake_up_the_poll_finds_new_events() -> None:
    async with running(bell=False, poll_s=0.05) as (factory, _, feeds):
        feed = feeds.feed(ALICE, since=None)
        await take(feed, 1)
        await change(factory, ALICE)
        assert keys(await take(feed, 1)) == [1]
        await feed.aclose()


async def test_an_expired_or_malformed_since() -> None:
    async with running(retention_s=60) as (factory, _, feeds):
        await change(factory, ALICE)
        stale = EventCursor(1, utc_now() - timedelta(seconds=61)).encode()
        feed = feeds.feed(ALICE, since=stale)
        reset = await take(feed, 1)
        await change(factory, ALICE)
        live = await take(feed, 1)
        await feed.aclose()
        forged = [base64.urlsafe_b64encode(text).decode() for text in (b"e:1|", b"c:1|5", b"e:1")]
        for bad in ("x", "ZTotMXwx", *forged):
            with pytest.raises(BadInputError):
                await anext(feeds.feed(ALICE, since=bad))
    assert isinstance(reset[0], Reset)
    assert reset[0].missed
    assert reset[0].cursor.key == 1
    assert keys(live) == [2]


async def test_the_purge_deletes_only_events_past_retention_and_grace() -> None:
    async with running(retention_s=60) as (factory, dispatcher, _):
        await change(factory, ALICE, 3)
        store = factory.store
        old = timedelta(seconds=60 + PURGE_GRACE_S + 1)
        store.events[:2] = [replace(e, created_at=e.created_at - old) for e in store.events[:2]]
        assert await dispatcher.purge() == 2
        assert [e.key for e in store.events] == [3]


async def test_a_failed_read_is_retried_at_the_next_poll(caplog: pytest.LogCaptureFixture) -> None:
    async with running(poll_s=0.05) as (factory, _, feeds):
        feed = feeds.feed(ALICE, since=None)
        await take(feed, 1)
        factory.store.fail_next_commit = False
        await change(factory, ALICE)
        factory.store.unreachable = True  # the dispatcher's read fails
        await eventually(lambda: "event dispatch failed" in caplog.text)
        factory.store.unreachable = False
        assert keys(await take(feed, 1)) == [1]
        await feed.aclose()


async def test_replies_marked_interrupted_are_announced_as_failed() -> None:
    store = FakeStore()
    async with store.factory() as unit:
        conversation = await unit.conversations.create(
            user_id=ALICE, title=None, system_prompt=None, options=SamplingOptions()
        )
        reply = await unit.messages.add(
            user_id=ALICE,
            conversation_id=conversation.id,
            kind=MessageKind.BOT,
            text="",
            status=MessageStatus.GENERATING,
        )
        await unit.commit()
    assert await recover_interrupted(store.factory, SingleProcess("alone"), dead_after_s=30) == 1
    [event] = store.events
    assert (event.kind, event.message_id, event.status) == (
        EventKind.REPLY_FINISHED,
        reply.id,
        MessageStatus.FAILED,
    )
    assert event.conversation_id == conversation.id
