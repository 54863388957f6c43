"""Refused sendMessage requests end with one Failed event and write nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.fakes.rig import ChatRig, drain, eventually, make_rig, next_event
from tests.fakes.uow import CommitFailedError

from llamaql.ports.engine import TemplateError
from llamaql.services.chat.events import Failed, Queued


@pytest.fixture
async def rig() -> AsyncIterator[ChatRig]:
    made = make_rig(queue_size=1, context_tokens=64, max_message_chars=500)
    await made.engine.start()
    yield made
    await made.service.shutdown()
    await made.engine.stop()


async def refused(rig: ChatRig, cid: uuid.UUID, text: str = "Hi", **kwargs: Any) -> Failed:
    """Send, expect exactly one Failed without a message, and that nothing was written."""
    messages_before = dict(rig.store.messages)
    submitted_before = len(rig.engine.handles)
    events = await drain(rig.send(cid, text, **kwargs))
    assert len(events) == 1
    failed = events[0]
    assert isinstance(failed, Failed)
    assert failed.assistant_message is None
    assert rig.store.messages == messages_before
    assert len(rig.engine.handles) == submitted_before
    return failed


@pytest.mark.parametrize(
    ("text", "options", "needle"),
    [
        ("   \n", None, "blank"),
        ("x" * 501, None, "at most 500 characters, got 501"),
        ("Hi", {"temperature": 5}, "temperature"),
        ("Hi", {"max_tokens": 100}, "max_tokens"),
        ("Hi", {"colour": "blue"}, "colour"),
        ("Hi", {"stop": "END"}, "stop"),
    ],
)
async def test_bad_input_is_refused(
    rig: ChatRig, text: str, options: dict[str, Any] | None, needle: str
) -> None:
    cid = await rig.conversation()
    failed = await refused(rig, cid, text, options=options)
    assert (failed.code, failed.retryable) == ("BAD_USER_INPUT", False)
    assert needle in failed.reason


async def test_missing_or_foreign_conversation_is_not_found(rig: ChatRig) -> None:
    other = await rig.conversation(user=uuid.uuid4())
    for cid in (other, uuid.uuid4()):
        failed = await refused(rig, cid)
        assert failed.code == "NOT_FOUND"
        assert failed.retryable is False


async def test_busy_conversation_is_refused_until_its_reply_ends(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script(paced=True)
    stream = rig.send(cid)
    assert isinstance(await next_event(stream), Queued)
    failed = await refused(rig, cid, "Me too")
    assert (failed.code, failed.retryable) == ("CONVERSATION_BUSY", True)

    # Another user sending to this conversation learns nothing about it being busy.
    assert (await refused(rig, cid, user=uuid.uuid4())).code == "NOT_FOUND"

    rig.engine.handles[0].allow(10)
    await drain(stream)
    assert (await drain(rig.send(cid, "Now")))[-1].message.status == "COMPLETE"  # type: ignore[union-attr]


async def test_full_queue_is_refused_and_retryable(rig: ChatRig) -> None:
    running, waiting, third = [await rig.conversation() for _ in range(3)]
    rig.engine.script(paced=True)
    rig.engine.script(paced=True)
    stream_a = rig.send(running)
    await next_event(stream_a)
    await eventually(lambda: rig.engine.running is not None, "the first request runs")
    stream_b = rig.send(waiting)
    await next_event(stream_b)  # queue_size=1: the queue is now full
    failed = await refused(rig, third)
    assert (failed.code, failed.retryable) == ("QUEUE_FULL", True)
    await stream_a.aclose()
    await stream_b.aclose()


async def test_queue_full_at_submit_rolls_back(rig: ChatRig) -> None:
    cid = await rig.conversation()
    # has_room() said yes, then another request took the slot before submit().
    rig.engine.has_room = lambda: True  # type: ignore[method-assign]
    rig.engine.queue_size = 0
    failed = await refused(rig, cid)
    assert failed.code == "QUEUE_FULL"
    assert rig.engine.replies_abandoned == 1  # the engine stops waiting for it


async def test_oversized_message_is_context_overflow(rig: ChatRig) -> None:
    cid = await rig.conversation()
    failed = await refused(rig, cid, "word " * 70)
    assert (failed.code, failed.retryable) == ("CONTEXT_OVERFLOW", False)


async def test_long_conversation_drops_old_turns_instead(rig: ChatRig) -> None:
    cid = await rig.conversation()
    for turn in range(6):
        events = await drain(rig.send(cid, f"turn {turn} " + "word " * 8))
        assert events[-1].message.status == "COMPLETE"  # type: ignore[union-attr]
    assert rig.messages(cid)[-1].dropped_messages
    assert rig.messages(cid)[-1].dropped_messages > 0  # type: ignore[operator]


async def test_template_failure_is_an_engine_error_without_internals(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.prepare_error = TemplateError("jinja2 UndefinedError: 'foo' is undefined")
    failed = await refused(rig, cid)
    assert failed.code == "ENGINE_ERROR"
    assert "jinja2" not in failed.reason


async def test_failed_commit_cancels_the_submitted_request(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.store.fail_next_commit = True
    with pytest.raises(CommitFailedError):
        await drain(rig.send(cid))
    assert rig.messages(cid) == []
    assert rig.engine.handles[0].cancelled
    assert (await drain(rig.send(cid)))[-1].message.status == "COMPLETE"  # type: ignore[union-attr]


async def test_sending_after_shutdown_is_refused(rig: ChatRig) -> None:
    cid = await rig.conversation()
    await rig.service.shutdown()
    failed = await refused(rig, cid)
    assert (failed.code, failed.retryable) == ("INTERNAL", True)
