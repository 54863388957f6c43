"""Two replicas on one database (fakes): cancel through the other replica, busy across
replicas, start-up recovery that spares live replies, and a late save that finds its
reply already marked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import pytest
from tests.fakes.engine import FakeEngine
from tests.fakes.replicas import FakeNoticeBus
from tests.fakes.rig import SYSTEM_PROMPT, drain, eventually, next_event
from tests.fakes.uow import FakeStore

from llamaql.config import load_config
from llamaql.container import create_chat_service
from llamaql.ports.errors import NotFoundError
from llamaql.ports.replicas import StopNotice, TextNotice, WatchNotice
from llamaql.ports.values import SamplingOptions
from llamaql.services.chat.events import ChatEvent, Completed, Delta, Failed, Queued
from llamaql.services.chat.service import ChatService
from llamaql.services.conversations import ConversationService


@dataclass
class Replica:
    service: ChatService
    engine: FakeEngine


def make_replica(store: FakeStore, bus: FakeNoticeBus, replica_id: str) -> Replica:
    """A ChatService on the shared store, reaching the others through the bus."""
    engine = FakeEngine()
    config = load_config(
        _env_file=None, system_prompt=SYSTEM_PROMPT, auto_title=False, replica_id=replica_id
    )
    return Replica(
        create_chat_service(config, store.factory, engine, replicas=bus.link(replica_id)), engine
    )


@dataclass
class Pair:
    store: FakeStore
    bus: FakeNoticeBus
    a: Replica
    b: Replica
    user: uuid.UUID

    def replica(self, replica_id: str) -> Replica:
        return make_replica(self.store, self.bus, replica_id)

    async def conversation(self) -> uuid.UUID:
        async with self.store.factory() as uow:
            row = await uow.conversations.create(
                user_id=self.user, title="t", system_prompt=None, options=SamplingOptions()
            )
            await uow.commit()
        return row.id


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    store, bus = FakeStore(), FakeNoticeBus()
    a, b = make_replica(store, bus, "replica-a"), make_replica(store, bus, "replica-b")
    made = Pair(store, bus, a, b, uuid.uuid4())
    for replica in (a, b):
        await replica.engine.start()
    yield made
    for replica in (a, b):
        await replica.service.shutdown()
        await replica.engine.stop()


async def generating_on_a(
    pair: Pair, cid: uuid.UUID
) -> tuple[AsyncGenerator[ChatEvent, None], Queued]:
    """A paced reply on replica A that has produced its first piece ("Hello")."""
    pair.a.engine.script(paced=True)
    stream = pair.a.service.send(user_id=pair.user, conversation_id=cid, text="Hi there")
    queued = await next_event(stream)
    assert isinstance(queued, Queued)
    pair.a.engine.handles[-1].allow(1)
    assert await next_event(stream) == Delta(queued.assistant_message_id, "Hello")
    return stream, queued


async def test_cancel_through_the_other_replica(pair: Pair) -> None:
    cid = await pair.conversation()
    stream, queued = await generating_on_a(pair, cid)

    cancelled = await pair.b.service.cancel(
        user_id=pair.user, message_id=queued.assistant_message_id
    )

    assert cancelled
    assert pair.bus.sent == [StopNotice(pair.user, message_id=queued.assistant_message_id)]
    assert pair.a.engine.handles[-1].cancelled
    # cancel() on B returns once A saved the reply.
    reply = pair.store.messages_of(cid)[-1]
    assert (reply.status, reply.text, reply.finish_reason) == ("CANCELLED", "Hello", "cancelled")
    done = (await drain(stream))[-1]
    assert isinstance(done, Completed)
    assert (done.message.status, done.message.text) == ("CANCELLED", "Hello")
    # Finished: nothing to cancel any more, and no notice is sent for it.
    assert not await pair.b.service.cancel(
        user_id=pair.user, message_id=queued.assistant_message_id
    )
    assert len(pair.bus.sent) == 1


async def test_another_user_cannot_cancel_through_the_other_replica(pair: Pair) -> None:
    cid = await pair.conversation()
    stream, queued = await generating_on_a(pair, cid)

    with pytest.raises(NotFoundError):
        await pair.b.service.cancel(user_id=uuid.uuid4(), message_id=queued.assistant_message_id)

    assert pair.bus.sent == []
    assert not pair.a.engine.handles[-1].cancelled
    pair.a.engine.handles[-1].allow(10)
    done = (await drain(stream))[-1]
    assert isinstance(done, Completed)
    assert done.message.status == "COMPLETE"


async def test_busy_across_replicas(pair: Pair) -> None:
    cid = await pair.conversation()
    stream, _ = await generating_on_a(pair, cid)

    refused = await drain(pair.b.service.send(user_id=pair.user, conversation_id=cid, text="Also"))

    assert len(refused) == 1
    assert isinstance(refused[0], Failed)
    assert refused[0].code == "CONVERSATION_BUSY"
    assert [m.status for m in pair.store.messages_of(cid)] == ["COMPLETE", "GENERATING"]
    assert pair.b.engine.handles == []
    pair.a.engine.handles[-1].allow(10)
    await drain(stream)


async def test_start_up_of_another_replica_spares_a_live_reply(pair: Pair) -> None:
    cid = await pair.conversation()
    stream, _ = await generating_on_a(pair, cid)

    assert await pair.replica("replica-c").service.recover_interrupted() == 0

    assert pair.store.messages_of(cid)[-1].status == "GENERATING"
    pair.a.engine.handles[-1].allow(10)
    done = (await drain(stream))[-1]
    assert isinstance(done, Completed)
    assert done.message.status == "COMPLETE"


async def test_a_late_save_does_not_overwrite_a_reply_marked_interrupted(pair: Pair) -> None:
    cid = await pair.conversation()
    stream, _ = await generating_on_a(pair, cid)
    # Replica A was silent too long: another replica's sweep marked its reply.
    async with pair.store.factory() as uow:
        assert len(await uow.messages.mark_interrupted(dead_after_s=0.0)) == 1
        await uow.commit()

    pair.a.engine.handles[-1].allow(10)
    done = (await drain(stream))[-1]

    assert isinstance(done, Failed)
    assert (done.code, done.retryable) == ("ENGINE_ERROR", True)
    assert done.assistant_message is not None
    assert (done.assistant_message.status, done.assistant_message.finish_reason) == (
        "FAILED",
        "interrupted",
    )
    reply = pair.store.messages_of(cid)[-1]
    assert (reply.status, reply.finish_reason) == ("FAILED", "interrupted")


async def test_deleting_on_the_other_replica_stops_the_reply(pair: Pair) -> None:
    cid = await pair.conversation()
    stream, _ = await generating_on_a(pair, cid)
    conversations = ConversationService(
        pair.store.factory, stop_replies=pair.b.service.stop_replies
    )

    await conversations.delete_conversation(pair.user, cid)

    done = (await drain(stream))[-1]
    assert isinstance(done, Failed)
    assert done.code == "NOT_FOUND"
    assert pair.a.engine.handles[-1].cancelled  # stopped, not run to its end
    assert pair.bus.sent == [StopNotice(pair.user, conversation_id=cid)]


def _text(events: list[ChatEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


async def test_a_reply_on_a_is_watched_through_b_by_relayed_text(pair: Pair) -> None:
    cid = await pair.conversation()
    stream, queued = await generating_on_a(pair, cid)
    reply_id = queued.assistant_message_id
    watched = pair.b.service.watch(user_id=pair.user, message_id=reply_id, after=2)
    # B asks A (a WatchNotice with what it has), A sends the rest and relays the new.
    assert await next_event(watched) == Delta(reply_id, "llo")
    await eventually(
        lambda: any(isinstance(n, WatchNotice) for n in pair.bus.reply_notices), "B asks A"
    )
    pair.a.engine.handles[-1].allow(1)
    assert await next_event(watched) == Delta(reply_id, ", ")
    assert TextNotice(reply_id, 5, ", ") in pair.bus.reply_notices  # relayed, not polled
    pair.a.engine.handles[-1].allow(10)
    sender = await drain(stream)
    rest = await drain(watched)
    saved = pair.store.messages_of(cid)[-1].text
    assert "Hello, " + _text(rest) == "Hello" + _text(sender) == saved == "Hello, world."
    assert isinstance(rest[-1], Completed)
    assert rest[-1].message.status == "COMPLETE"


async def test_lost_notices_are_made_up_by_polling_the_row(pair: Pair) -> None:
    pair.bus.drop_text = True
    cid = await pair.conversation()
    stream, queued = await generating_on_a(pair, cid)
    watched = pair.b.service.watch(
        user_id=pair.user, message_id=queued.assistant_message_id, after=0
    )
    pair.a.engine.handles[-1].allow(10)
    await drain(stream)
    events = await drain(watched)
    assert _text(events) == pair.store.messages_of(cid)[-1].text == "Hello, world."
    assert isinstance(events[-1], Completed)


async def test_a_watcher_on_b_gets_the_recoverys_end_when_a_dies(pair: Pair) -> None:
    cid = await pair.conversation()
    _stream, queued = await generating_on_a(pair, cid)
    watched = pair.b.service.watch(
        user_id=pair.user, message_id=queued.assistant_message_id, after=0
    )
    assert await next_event(watched) == Delta(queued.assistant_message_id, "Hello")
    # A stops beating; B's sweep marks its reply FAILED/interrupted.
    async with pair.store.factory() as uow:
        assert len(await uow.messages.mark_interrupted(dead_after_s=0.0)) == 1
        await uow.commit()
    done = (await drain(watched))[-1]
    assert isinstance(done, Failed)
    assert (done.code, done.retryable) == ("ENGINE_ERROR", True)
    assert done.assistant_message is not None
    assert (done.assistant_message.status, done.assistant_message.finish_reason) == (
        "FAILED",
        "interrupted",
    )
    pair.a.engine.handles[-1].allow(10)  # A's late save finds the reply taken
