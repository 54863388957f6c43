"""Cancelling a reply: cancelGeneration, a client going away from a stream that asked
for it (cancelOnClose), and server shutdown. (A client going away from a stream that did
not ask leaves the reply running: test_chat_detach.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

import pytest
from tests.fakes.rig import ChatRig, drain, eventually, make_rig, next_event

from llamaql.ports.errors import NotFoundError
from llamaql.ports.events import EventKind
from llamaql.services.chat.events import ChatEvent, Completed, Delta, Failed, Queued
from llamaql.services.conversations import ConversationService


@pytest.fixture
async def rig() -> AsyncIterator[ChatRig]:
    made = make_rig()
    await made.engine.start()
    yield made
    await made.service.shutdown()
    await made.engine.stop()


async def started(
    rig: ChatRig, cid: uuid.UUID, *, cancel_on_close: bool = False
) -> tuple[AsyncGenerator[ChatEvent, None], Queued]:
    """A paced reply that has produced its first piece ("Hello")."""
    rig.engine.script(paced=True)
    stream = rig.send(cid, cancel_on_close=cancel_on_close)
    queued = await next_event(stream)
    assert isinstance(queued, Queued)
    rig.engine.handles[-1].allow(1)
    assert await next_event(stream) == Delta(queued.assistant_message_id, "Hello")
    return stream, queued


async def test_owner_cancels_and_listener_gets_the_partial_reply(rig: ChatRig) -> None:
    cid = await rig.conversation()
    stream, queued = await started(rig, cid)
    assert await rig.service.cancel(user_id=rig.user, message_id=queued.assistant_message_id)
    # cancel() returns once the reply is saved.
    reply = rig.messages(cid)[-1]
    assert (reply.status, reply.text, reply.finish_reason) == ("CANCELLED", "Hello", "cancelled")

    done = (await drain(stream))[-1]
    assert isinstance(done, Completed)
    assert (done.message.id, done.message.status, done.message.text) == (
        queued.assistant_message_id,
        "CANCELLED",
        "Hello",
    )
    assert not await rig.service.cancel(user_id=rig.user, message_id=queued.assistant_message_id)
    # Cancelled text is history: the next prompt includes it.
    await drain(rig.send(cid, "Go on"))
    assert [m.content for m in rig.engine.prepared[-1][1:]] == ["Hi there", "Hello", "Go on"]


async def test_only_the_owner_can_cancel(rig: ChatRig) -> None:
    cid = await rig.conversation()
    stream, queued = await started(rig, cid)
    with pytest.raises(NotFoundError):
        await rig.service.cancel(user_id=uuid.uuid4(), message_id=queued.assistant_message_id)
    with pytest.raises(NotFoundError):
        await rig.service.cancel(user_id=rig.user, message_id=uuid.uuid4())
    assert not rig.engine.handles[0].cancelled
    rig.engine.handles[0].allow(10)
    done = (await drain(stream))[-1]
    assert isinstance(done, Completed)
    assert done.message.status == "COMPLETE"


async def test_closing_the_stream_saves_the_partial_reply(rig: ChatRig) -> None:
    cid = await rig.conversation()
    stream, _ = await started(rig, cid, cancel_on_close=True)
    await stream.aclose()  # GeneratorExit at the yield: the client unsubscribed
    await eventually(lambda: rig.messages(cid)[-1].status == "CANCELLED", "the reply is saved")
    assert rig.messages(cid)[-1].text == "Hello"
    assert isinstance((await drain(rig.send(cid, "Next")))[-1], Completed)


async def test_cancelled_subscriber_task_saves_the_partial_reply(rig: ChatRig) -> None:
    cid = await rig.conversation()
    stream, _ = await started(rig, cid, cancel_on_close=True)
    # What Strawberry does when the socket drops: cancel the task awaiting the stream.
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await eventually(lambda: rig.messages(cid)[-1].status == "CANCELLED", "the reply is saved")
    assert rig.messages(cid)[-1].text == "Hello"
    assert rig.engine.handles[0].cancelled


async def test_client_leaving_before_the_first_event_still_cancels(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script(paced=True)
    rig.store.commit_gate = asyncio.Event()
    stream = rig.send(cid, cancel_on_close=True)
    first = asyncio.ensure_future(anext(stream))
    await eventually(lambda: bool(rig.engine.handles), "the request is submitted")
    first.cancel()  # while the exchange is being committed
    with pytest.raises(asyncio.CancelledError):
        await first
    rig.store.commit_gate.set()
    await eventually(
        lambda: [m.status for m in rig.messages(cid)] == ["COMPLETE", "CANCELLED"],
        "the exchange is stored and the reply cancelled",
    )
    assert (rig.messages(cid)[0].text, rig.messages(cid)[-1].text) == ("Hi there", "")


async def test_shutdown_waits_until_partial_replies_are_saved(rig: ChatRig) -> None:
    first, second = await rig.conversation(), await rig.conversation()
    stream_a, _ = await started(rig, first)
    rig.engine.script(paced=True)
    stream_b = rig.send(second)
    assert isinstance(await next_event(stream_b), Queued)

    await rig.service.shutdown()
    assert [m.status for m in rig.messages(first)] == ["COMPLETE", "CANCELLED"]
    assert rig.messages(first)[-1].text == "Hello"
    assert [m.status for m in rig.messages(second)] == ["COMPLETE", "CANCELLED"]
    assert rig.messages(second)[-1].text == ""
    assert rig.engine.handles[1].started.is_set() is False  # never reached the model
    for stream in (stream_a, stream_b):
        done = (await drain(stream))[-1]
        assert isinstance(done, Completed)
        assert done.message.status == "CANCELLED"


async def test_shutdown_cancels_a_reply_submitted_meanwhile(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script(paced=True)
    rig.store.commit_gate = asyncio.Event()
    stream = rig.send(cid)
    first = asyncio.ensure_future(anext(stream))
    await eventually(lambda: bool(rig.engine.handles), "the request is submitted")
    stopping = asyncio.ensure_future(rig.service.shutdown())
    await asyncio.sleep(0)
    rig.store.commit_gate.set()
    await asyncio.wait_for(stopping, 5)
    assert [m.status for m in rig.messages(cid)] == ["COMPLETE", "CANCELLED"]
    assert isinstance(await first, Queued)
    assert (await drain(stream))[-1].message.status == "CANCELLED"  # type: ignore[union-attr]


async def test_deleting_the_conversation_stops_its_reply(rig: ChatRig) -> None:
    conversations = ConversationService(rig.store.factory, stop_replies=rig.service.stop_replies)
    cid = await rig.conversation()
    stream, _queued = await started(rig, cid)
    await conversations.delete_conversation(rig.user, cid)
    *_, last = await drain(stream)
    assert isinstance(last, Failed)
    assert last.code == "NOT_FOUND"
    assert rig.engine.handles[0].cancelled
    assert rig.engine.handles[0].emitted == ["Hello"]  # stopped, not run to the end


async def test_deleting_the_conversation_forgets_its_kv_after_stopping_its_reply(
    rig: ChatRig,
) -> None:
    conversations = ConversationService(
        rig.store.factory, stop_replies=rig.service.stop_replies, forget_kv=rig.engine.forget
    )
    cid = await rig.conversation()
    stream, _queued = await started(rig, cid)
    with pytest.raises(NotFoundError):  # another user's: nothing forgotten
        await conversations.delete_conversation(uuid.uuid4(), cid)
    assert rig.engine.forgotten == []
    await conversations.delete_conversation(rig.user, cid)
    assert rig.engine.handles[0].cancelled
    # The very requester the reply ran as: its KV in memory, sequence and file goes.
    assert rig.engine.forgotten == [rig.engine.handles[0].requester]
    await drain(stream)


async def test_deleting_another_users_conversation_id_stops_nothing(rig: ChatRig) -> None:
    cid = await rig.conversation()
    stream, _queued = await started(rig, cid)
    rig.service.stop_replies(uuid.uuid4(), cid)
    assert not rig.engine.handles[0].cancelled
    rig.engine.handles[0].allow(10)
    *_, last = await drain(stream)
    assert isinstance(last, Completed)


async def test_a_failed_final_save_is_retried(rig: ChatRig) -> None:
    cid = await rig.conversation()
    stream, _queued = await started(rig, cid)
    rig.store.fail_commits = 2  # the final save fails twice, then goes through
    rig.engine.handles[0].allow(10)
    *_, last = await drain(stream)
    assert isinstance(last, Completed)
    assert rig.messages(cid)[-1].status == "COMPLETE"
    assert rig.messages(cid)[-1].text == "Hello, world."


async def test_a_save_that_keeps_failing_leaves_the_reply_failed_and_the_conversation_free(
    rig: ChatRig,
) -> None:
    cid = await rig.conversation()
    stream, _queued = await started(rig, cid)
    # ReplyStarted commits on its own, a few loop passes after the first piece.
    started_kind = EventKind.REPLY_STARTED
    await eventually(lambda: any(e.kind == started_kind for e in rig.store.events), "started")
    rig.store.fail_commits = 4  # every try of the save; the fallback write goes through
    rig.engine.handles[0].allow(10)
    *_, last = await drain(stream)
    assert isinstance(last, Failed)
    assert (last.code, last.retryable) == ("INTERNAL", True)
    reply = rig.messages(cid)[-1]
    assert (reply.status, reply.text) == ("FAILED", "Hello, world.")
    *_, again = await drain(rig.send(cid, "Still there?"))
    assert isinstance(again, Completed)  # not CONVERSATION_BUSY


async def test_the_text_is_checkpointed_while_it_streams() -> None:
    rig = make_rig(checkpoint_seconds=0.001)
    await rig.engine.start()
    cid = await rig.conversation()
    stream, _queued = await started(rig, cid)  # "Hello" streamed, the rest held
    await eventually(lambda: rig.messages(cid)[-1].text == "Hello", "a checkpoint")
    assert rig.messages(cid)[-1].status == "GENERATING"
    rig.engine.handles[0].allow(10)
    *_, last = await drain(stream)
    assert isinstance(last, Completed)
    assert rig.messages(cid)[-1].text == "Hello, world."  # the end wins over checkpoints
    await rig.service.shutdown()
    await rig.engine.stop()
