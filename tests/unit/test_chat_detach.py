"""Replies outlive their streams, and replyStream follows them (fakes): the feed's
fan-out, detaching, watching mid-reply, ended and queued replies, refusals, metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator

import pytest
from tests.fakes.rig import ChatRig, drain, eventually, make_rig, next_event

from llamaql.ports.errors import BadInputError
from llamaql.services.chat.events import ChatEvent, Completed, Delta, Failed, Queued
from llamaql.services.chat.reply_feed import ReplyFeed


@pytest.fixture
async def rig() -> AsyncIterator[ChatRig]:
    made = make_rig()
    await made.engine.start()
    yield made
    await made.service.shutdown()
    await made.engine.stop()


def text_of(events: list[ChatEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


async def paced(rig: ChatRig, cid: uuid.UUID) -> tuple[AsyncGenerator[ChatEvent, None], Queued]:
    rig.engine.script(paced=True)
    stream = rig.send(cid)
    queued = await next_event(stream)
    assert isinstance(queued, Queued)
    return stream, queued


def watch(rig: ChatRig, message_id: uuid.UUID, after: int = 0) -> AsyncGenerator[ChatEvent, None]:
    return rig.service.watch(user_id=rig.user, message_id=message_id, after=after)


async def test_a_watcher_attaching_mid_reply_gets_the_rest_once() -> None:
    feed = ReplyFeed(uuid.uuid4())
    early = feed.watch(0)
    feed.publish(Delta(feed.message_id, "Hel"))
    feed.publish(Delta(feed.message_id, "lo"))
    late = feed.watch(2)  # has seen "He"
    assert await late.next() == Delta(feed.message_id, "llo")
    feed.publish(Delta(feed.message_id, ", world"))
    assert await late.next() == Delta(feed.message_id, ", world")
    # The early watcher read nothing meanwhile: its pieces merged into one.
    assert early.unread == 1
    assert await early.next() == Delta(feed.message_id, "Hello, world")
    with pytest.raises(BadInputError):
        feed.watch(len(feed.text) + 1)
    with pytest.raises(BadInputError):
        feed.watch(-1)


async def test_closing_the_stream_leaves_the_reply_running_to_complete(rig: ChatRig) -> None:
    ended: list[ChatEvent] = []
    rig.service.on_reply_end(ended.append)
    cid = await rig.conversation()
    stream, _queued = await paced(rig, cid)
    rig.engine.handles[-1].allow(1)
    assert isinstance(await next_event(stream), Delta)
    await stream.aclose()  # the client went away
    rig.engine.handles[-1].allow(10)
    await eventually(lambda: rig.messages(cid)[-1].status == "COMPLETE", "the reply completes")
    assert rig.messages(cid)[-1].text == "Hello, world."
    assert not rig.engine.handles[-1].cancelled
    # Counted once, when it ended, as what it ended as.
    assert [type(e) for e in ended] == [Completed]
    assert isinstance(ended[0], Completed)
    assert ended[0].message.status == "COMPLETE"


async def test_watchers_and_the_sender_get_the_same_text(rig: ChatRig) -> None:
    cid = await rig.conversation()
    stream, queued = await paced(rig, cid)
    reply_id = queued.assistant_message_id
    handle = rig.engine.handles[-1]
    handle.allow(2)
    first = [await next_event(stream), await next_event(stream)]
    assert text_of(first) == "Hello, "
    late = watch(rig, reply_id, after=3)  # "Hel" already shown
    assert await next_event(late) == Delta(reply_id, "lo, ")
    whole = watch(rig, reply_id)
    assert await next_event(whole) == Delta(reply_id, "Hello, ")
    handle.allow(10)
    sender_rest, late_rest, whole_rest = await drain(stream), await drain(late), await drain(whole)
    saved = rig.messages(cid)[-1].text
    assert text_of(first + sender_rest) == saved == "Hello, world."
    assert "Hel" + "lo, " + text_of(late_rest) == saved
    assert "Hello, " + text_of(whole_rest) == saved
    for rest in (sender_rest, late_rest, whole_rest):
        assert isinstance(rest[-1], Completed)
        assert rest[-1].message.text == saved


async def test_cancel_on_close_still_cancels(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script(paced=True)
    stream = rig.send(cid, cancel_on_close=True)
    queued = await next_event(stream)
    assert isinstance(queued, Queued)
    rig.engine.handles[-1].allow(1)
    await next_event(stream)
    watcher = watch(rig, queued.assistant_message_id)
    await stream.aclose()
    events = await drain(watcher)  # a replyStream sees the cancel's end
    assert isinstance(events[-1], Completed)
    assert (events[-1].message.status, text_of(events)) == ("CANCELLED", "Hello")


async def test_closing_a_watcher_never_affects_the_reply(rig: ChatRig) -> None:
    cid = await rig.conversation()
    stream, queued = await paced(rig, cid)
    watcher = watch(rig, queued.assistant_message_id)
    rig.engine.handles[-1].allow(1)
    await next_event(watcher)
    await watcher.aclose()
    rig.engine.handles[-1].allow(10)
    assert isinstance((await drain(stream))[-1], Completed)
    assert rig.messages(cid)[-1].status == "COMPLETE"


async def test_an_ended_reply_gives_its_rest_and_end_at_once(rig: ChatRig) -> None:
    cid = await rig.conversation()
    done = (await drain(rig.send(cid)))[-1]
    assert isinstance(done, Completed)
    events = await drain(watch(rig, done.message.id, after=7))
    assert events == [Delta(done.message.id, "world."), done]
    assert await drain(watch(rig, done.message.id, after=13)) == [done]


async def test_a_queued_reply_gives_its_position(rig: ChatRig) -> None:
    first, second = await rig.conversation(), await rig.conversation()
    running, _ = await paced(rig, first)
    await eventually(lambda: rig.engine.running is not None, "the first request runs")
    waiting, queued = await paced(rig, second)
    assert queued.position == 1
    watched = watch(rig, queued.assistant_message_id)
    assert await next_event(watched) == queued
    rig.engine.handles[0].allow(10)
    await drain(running)
    moved = await next_event(watched)
    assert isinstance(moved, Queued)
    assert moved.position == 0
    rig.engine.handles[1].allow(10)
    assert text_of(await drain(watched)) == text_of(await drain(waiting)) == "Hello, world."


async def test_refusals_are_one_failed_and_another_users_is_not_found(rig: ChatRig) -> None:
    cid = await rig.conversation()
    done = (await drain(rig.send(cid)))[-1]
    assert isinstance(done, Completed)
    question_id = done.message.parent_id
    assert question_id is not None
    cases = [
        (uuid.uuid4(), done.message.id, 0, "NOT_FOUND"),  # another user's reply
        (rig.user, uuid.uuid4(), 0, "NOT_FOUND"),  # unknown
        (rig.user, question_id, 0, "NOT_FOUND"),  # a user message
        (rig.user, done.message.id, -1, "BAD_USER_INPUT"),
        (rig.user, done.message.id, 14, "BAD_USER_INPUT"),
    ]
    for user, message_id, after, code in cases:
        events = await drain(rig.service.watch(user_id=user, message_id=message_id, after=after))
        assert len(events) == 1, events
        assert isinstance(events[0], Failed)
        assert (events[0].code, events[0].assistant_message) == (code, None)
    stranger = await drain(
        rig.service.watch(user_id=uuid.uuid4(), message_id=done.message.id, after=0)
    )
    unknown = await drain(rig.service.watch(user_id=rig.user, message_id=uuid.uuid4(), after=0))
    assert isinstance(stranger[0], Failed)
    assert isinstance(unknown[0], Failed)
    assert stranger[0].reason.split()[0] == unknown[0].reason.split()[0] == "message"
