"""ChatService.send on fakes: the happy path, history, titles, queue positions, failures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from tests.fakes.rig import SYSTEM_PROMPT, ChatRig, drain, eventually, make_rig, next_event

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.engine import ChatMessage, Requester
from llamaql.services.chat.events import Completed, Delta, Failed, Queued


@pytest.fixture
async def rig() -> AsyncIterator[ChatRig]:
    made = make_rig()
    await made.engine.start()
    yield made
    await made.service.shutdown()
    await made.engine.stop()


async def test_reply_streams_then_is_stored_once_complete(rig: ChatRig) -> None:
    cid = await rig.conversation()
    before = rig.store.conversations[cid].updated_at
    events = await drain(rig.send(cid, "What is the capital of France?"))

    queued, *deltas, done = events
    assert isinstance(queued, Queued)
    assert queued.position == 0
    assert queued.user_message.text == "What is the capital of France?"
    assert all(isinstance(d, Delta) and d.message_id == queued.assistant_message_id for d in deltas)
    assert isinstance(done, Completed)
    streamed = "".join(d.text for d in deltas if isinstance(d, Delta))
    assert streamed == "Hello, world." == done.message.text

    user, reply = rig.messages(cid)
    assert (user.kind, user.status, user.text) == (3, "COMPLETE", "What is the capital of France?")
    assert (reply.id, reply.kind, reply.status) == (queued.assistant_message_id, 2, "COMPLETE")
    assert (reply.text, reply.finish_reason) == ("Hello, world.", "stop")
    assert reply.completion_tokens == 4
    assert reply.prompt_tokens is not None
    assert reply.prompt_tokens > 0
    assert reply.dropped_messages == 0
    assert rig.store.conversations[cid].updated_at > before
    assert rig.store.conversations[cid].title == "What is the capital of France?"


async def test_prompt_has_system_prompt_history_and_new_text(rig: ChatRig) -> None:
    cid = await rig.conversation()
    await drain(rig.send(cid, "first"))
    rig.engine.script(fail_after=0)
    await drain(rig.send(cid, "second"))  # its reply FAILED: not history
    await drain(rig.send(cid, "third"))

    assert rig.engine.prepared[0] == [
        ChatMessage("system", SYSTEM_PROMPT),
        ChatMessage("user", "first"),
    ]
    assert rig.engine.prepared[2] == [
        ChatMessage("system", SYSTEM_PROMPT),
        ChatMessage("user", "first"),
        ChatMessage("assistant", "Hello, world."),
        ChatMessage("user", "second\n\nthird"),
    ]


async def test_conversation_system_prompt_and_options_are_used(rig: ChatRig) -> None:
    cid = await rig.conversation(
        system_prompt="Talk like a pirate.", options={"temperature": 0.3, "max_tokens": 9}
    )
    await drain(rig.send(cid, options={"max_tokens": 5, "seed": 7}))
    assert rig.engine.prepared[0][0] == ChatMessage("system", "Talk like a pirate.")
    handle = rig.engine.handles[0]
    options = handle.prompt.options
    assert (options.temperature, options.max_tokens, options.seed) == (0.3, 5, 7)
    assert handle.requester == Requester(str(rig.user), str(cid))


async def test_title_comes_from_the_first_message_only(rig: ChatRig) -> None:
    cid = await rig.conversation()
    long_text = "Tell me   about the\nhistory of " + "very " * 30 + "old bridges"
    await drain(rig.send(cid, long_text))
    title = rig.store.conversations[cid].title
    assert title is not None
    assert title.startswith("Tell me about the history of very")
    assert title.endswith("…")
    assert len(title) <= 60
    await drain(rig.send(cid, "Another question"))
    assert rig.store.conversations[cid].title == title

    named = await rig.conversation(title="Kept")
    await drain(rig.send(named, "Hello"))
    assert rig.store.conversations[named].title == "Kept"


async def test_queue_position_is_reported_as_it_moves(rig: ChatRig) -> None:
    first, second, third = [await rig.conversation() for _ in range(3)]
    rig.engine.script(paced=True)
    rig.engine.script(paced=True)
    stream_a = rig.send(first)
    assert isinstance(await next_event(stream_a), Queued)
    await eventually(lambda: rig.engine.running is not None, "the first request runs")
    stream_b, stream_c = rig.send(second), rig.send(third)
    b0, c0 = await next_event(stream_b), await next_event(stream_c)
    assert isinstance(b0, Queued)
    assert isinstance(c0, Queued)
    assert (b0.position, c0.position) == (1, 2)  # the running request counts

    rig.engine.handles[0].allow(10)
    assert isinstance((await drain(stream_a))[-1], Completed)
    assert await next_event(stream_b) == Queued(b0.user_message, b0.assistant_message_id, 0)
    assert await next_event(stream_c) == Queued(c0.user_message, c0.assistant_message_id, 1)
    rig.engine.handles[1].allow(10)
    assert isinstance((await drain(stream_b))[-1], Completed)
    rest_c = await drain(stream_c)
    assert [e.position for e in rest_c if isinstance(e, Queued)] == [0]
    assert isinstance(rest_c[-1], Completed)


async def test_engine_error_saves_failed_reply_and_worker_keeps_serving(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script("Par", "tial", "never", fail_after=2)
    events = await drain(rig.send(cid, "Break, please"))
    # Pieces the stream had not read yet arrive merged: one Delta here.
    assert [type(e) for e in events] == [Queued, Delta, Failed]
    queued = events[0]
    assert isinstance(queued, Queued)
    assert events[1] == Delta(queued.assistant_message_id, "Partial")
    failed = events[-1]
    assert isinstance(failed, Failed)
    assert (failed.code, failed.retryable) == ("ENGINE_ERROR", True)
    assert "fake failure" not in failed.reason  # internals stay in the log
    assert failed.assistant_message is not None
    assert (failed.assistant_message.status, failed.assistant_message.text) == ("FAILED", "Partial")
    user, reply = rig.messages(cid)
    assert (user.text, user.status) == ("Break, please", "COMPLETE")
    assert (reply.status, reply.text) == ("FAILED", "Partial")

    again = await drain(rig.send(cid, "Try again"))
    assert isinstance(again[-1], Completed)
    assert again[-1].message.status == "COMPLETE"


async def test_no_unit_of_work_is_held_open_while_streaming(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script(paced=True)
    stream = rig.send(cid)
    assert isinstance(await next_event(stream), Queued)
    rig.engine.handles[0].allow(1)
    assert isinstance(await next_event(stream), Delta)
    assert rig.store.open_units == 0
    assert [m.status for m in rig.messages(cid)] == ["COMPLETE", "GENERATING"]
    rig.engine.handles[0].allow(10)
    assert isinstance((await drain(stream))[-1], Completed)
    assert rig.store.max_open_units == 1


async def test_deleting_the_conversation_mid_reply_ends_the_stream(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script(paced=True)
    stream = rig.send(cid)
    assert isinstance(await next_event(stream), Queued)
    async with rig.store.factory() as uow:
        assert await uow.conversations.delete(user_id=rig.user, conversation_id=cid)
        await uow.commit()
    rig.engine.handles[0].allow(10)
    failed = (await drain(stream))[-1]
    assert isinstance(failed, Failed)
    assert (failed.code, failed.assistant_message) == ("NOT_FOUND", None)
    assert rig.messages(cid) == []


async def test_recover_marks_generating_replies_interrupted(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script(paced=True)
    stream = rig.send(cid, "Will the server survive?")
    assert isinstance(await next_event(stream), Queued)
    # What a killed process leaves behind: the committed GENERATING row, no finisher.
    leftover = {mid: m.model_copy() for mid, m in rig.store.messages.items()}
    rig.engine.handles[0].allow(10)
    await drain(stream)
    rig.store.messages = leftover

    assert await rig.service.recover_interrupted() == 1
    user, reply = rig.messages(cid)
    assert (user.text, user.status) == ("Will the server survive?", "COMPLETE")
    assert (reply.status, reply.finish_reason) == ("FAILED", "interrupted")
    assert await rig.service.recover_interrupted() == 0


async def test_a_long_history_is_read_only_as_far_as_the_context_could_hold() -> None:
    rig = make_rig(context_tokens=40)  # so at most 40 messages could ever fit
    await rig.engine.start()
    cid = await rig.conversation()
    async with rig.store.factory() as uow:
        for i in range(60):
            await uow.messages.add(
                user_id=rig.user,
                conversation_id=cid,
                kind=MessageKind.USER if i % 2 == 0 else MessageKind.BOT,
                text=f"m{i}",
                status=MessageStatus.COMPLETE,
            )
        await uow.commit()
    await drain(rig.send(cid, "latest"))
    prepared = rig.engine.prepared[-1]
    assert len(prepared) <= 1 + 40 + 1  # system, the newest 40 at most, the new text
    assert prepared[-1] == ChatMessage("user", "latest")
    await rig.service.shutdown()
    await rig.engine.stop()


async def test_the_engine_hears_of_a_reply_before_the_database_work(rig: ChatRig) -> None:
    # Background work (titles) steps aside when a send begins, not only once its reply
    # is queued: the request's own work needs the CPU too. A send refused by the
    # database lookup (unknown conversation) has told the engine all the same.
    cid = await rig.conversation()
    await drain(rig.send(cid, "hello"))
    assert rig.engine.replies_expected == 1
    assert rig.engine.replies_abandoned == 0  # it arrived: its submit settles it
    await drain(rig.send(uuid.uuid4(), "nobody's"))
    assert rig.engine.replies_expected == 2
    # Refused before its submit: the engine stops waiting for it at once.
    assert rig.engine.replies_abandoned == 1
