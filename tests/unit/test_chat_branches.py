"""regenerate, editMessage and selectBranch on fakes: where new messages go in the tree,
which branch prompts use, and every sendMessage refusal writing nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest
from tests.fakes.rig import SYSTEM_PROMPT, ChatRig, drain, eventually, make_rig, next_event

from llamaql.config import ChatConfig
from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.engine import ChatMessage
from llamaql.ports.errors import ConversationBusyError, NotFoundError
from llamaql.ports.values import Message
from llamaql.services import branching
from llamaql.services.chat.events import ChatEvent, Completed, Failed, Queued
from llamaql.services.context_usage import ContextUsageService


@pytest.fixture
async def rig() -> AsyncIterator[ChatRig]:
    made = make_rig(queue_size=1, max_message_chars=500)
    await made.engine.start()
    yield made
    await made.service.shutdown()
    await made.engine.stop()


def regenerate(rig: ChatRig, message_id: uuid.UUID, **kwargs: Any) -> AsyncGenerator[ChatEvent]:
    return rig.service.regenerate(
        user_id=kwargs.pop("user", rig.user),
        message_id=message_id,
        options=kwargs.pop("options", None),
    )


def edit(
    rig: ChatRig, message_id: uuid.UUID, text: str, **kwargs: Any
) -> AsyncGenerator[ChatEvent]:
    return rig.service.edit(
        user_id=kwargs.pop("user", rig.user),
        message_id=message_id,
        text=text,
        options=kwargs.pop("options", None),
    )


async def exchange(rig: ChatRig, cid: uuid.UUID, text: str) -> tuple[Message, Message]:
    """Send `text`; the stored user message and reply."""
    events = await drain(rig.send(cid, text))
    queued, done = events[0], events[-1]
    assert isinstance(queued, Queued)
    assert isinstance(done, Completed)
    return queued.user_message, done.message


async def current_branch(rig: ChatRig, cid: uuid.UUID) -> list[str]:
    async with rig.store.factory() as uow:
        page = await uow.messages.list_page(
            user_id=rig.user, conversation_id=cid, limit=100, after_seq=None
        )
    return [m.text for m in page]


async def siblings(rig: ChatRig, message_id: uuid.UUID) -> list[uuid.UUID]:
    async with rig.store.factory() as uow:
        found = await uow.branches.sibling_ids(user_id=rig.user, message_ids=[message_id])
    return found[message_id]


async def test_regenerate_adds_a_sibling_reply_to_the_same_question(rig: ChatRig) -> None:
    cid = await rig.conversation()
    question, first = await exchange(rig, cid, "first")
    rig.engine.script("Another ", "answer.")

    queued, *_, done = await drain(regenerate(rig, first.id))

    assert isinstance(queued, Queued)
    assert queued.user_message.id == question.id  # the question answered again
    assert isinstance(done, Completed)
    assert done.message.text == "Another answer."
    assert done.message.parent_id == question.id
    assert await siblings(rig, first.id) == [first.id, done.message.id]
    assert await current_branch(rig, cid) == ["first", "Another answer."]
    # No new user message: the question is stored once.
    assert [m.kind for m in rig.messages(cid)] == [MessageKind.USER, MessageKind.BOT, 2]
    # The prompt is the question's branch, not the earlier reply.
    assert rig.engine.prepared[-1] == [
        ChatMessage("system", SYSTEM_PROMPT),
        ChatMessage("user", "first"),
    ]


async def test_edit_adds_a_sibling_question_and_prompts_from_its_branch_only(
    rig: ChatRig,
) -> None:
    cid = await rig.conversation()
    await exchange(rig, cid, "keep me")
    question, _ = await exchange(rig, cid, "forget me")

    events = await drain(edit(rig, question.id, "instead"))

    queued, done = events[0], events[-1]
    assert isinstance(queued, Queued)
    assert isinstance(done, Completed)
    assert queued.user_message.text == "instead"
    assert queued.user_message.parent_id == question.parent_id
    assert await siblings(rig, question.id) == [question.id, queued.user_message.id]
    assert await current_branch(rig, cid) == [
        "keep me",
        "Hello, world.",
        "instead",
        "Hello, world.",
    ]
    prompt = rig.engine.prepared[-1]
    assert prompt[-1] == ChatMessage("user", "instead")
    assert all("forget me" not in m.content for m in prompt)


async def test_editing_a_first_message_makes_a_new_root(rig: ChatRig) -> None:
    cid = await rig.conversation()
    question, _ = await exchange(rig, cid, "one")
    await exchange(rig, cid, "two")

    queued = (await drain(edit(rig, question.id, "uno")))[0]

    assert isinstance(queued, Queued)
    assert queued.user_message.parent_id is None
    assert rig.engine.prepared[-1] == [
        ChatMessage("system", SYSTEM_PROMPT),
        ChatMessage("user", "uno"),
    ]
    assert await current_branch(rig, cid) == ["uno", "Hello, world."]


async def test_send_after_a_branch_switch_continues_the_selected_branch(rig: ChatRig) -> None:
    cid = await rig.conversation()
    question, first = await exchange(rig, cid, "q")
    rig.engine.script("second")
    await drain(regenerate(rig, first.id))

    chosen = await rig.service.select_branch(user_id=rig.user, message_id=first.id)
    assert chosen.current_leaf_id == first.id
    assert await current_branch(rig, cid) == ["q", "Hello, world."]

    await exchange(rig, cid, "more")
    assert rig.engine.prepared[-1][1:] == [
        ChatMessage("user", "q"),
        ChatMessage("assistant", "Hello, world."),
        ChatMessage("user", "more"),
    ]

    # Selecting the question goes down to its newest leaf: the follow-up just sent.
    await rig.service.select_branch(user_id=rig.user, message_id=question.id)
    assert await current_branch(rig, cid) == ["q", "Hello, world.", "more", "Hello, world."]


async def refused(rig: ChatRig, stream: AsyncGenerator[ChatEvent]) -> Failed:
    """Exactly one Failed without a message, and nothing written or submitted."""
    messages_before = dict(rig.store.messages)
    leaves_before = {c: v.current_leaf_id for c, v in rig.store.conversations.items()}
    submitted_before = len(rig.engine.handles)
    events = await drain(stream)
    assert len(events) == 1
    failed = events[0]
    assert isinstance(failed, Failed)
    assert failed.assistant_message is None
    assert rig.store.messages == messages_before
    assert {c: v.current_leaf_id for c, v in rig.store.conversations.items()} == leaves_before
    assert len(rig.engine.handles) == submitted_before
    return failed


async def test_bad_requests_are_refused_before_writing(rig: ChatRig) -> None:
    cid = await rig.conversation()
    question, reply = await exchange(rig, cid, "q")
    stranger = uuid.uuid4()
    cases: list[tuple[AsyncGenerator[ChatEvent], str, str]] = [
        (regenerate(rig, question.id), "BAD_USER_INPUT", "not an assistant reply"),
        (edit(rig, reply.id, "x"), "BAD_USER_INPUT", "not a user message"),
        (edit(rig, question.id, "  "), "BAD_USER_INPUT", "blank"),
        (edit(rig, question.id, "x" * 501), "BAD_USER_INPUT", "at most 500"),
        (regenerate(rig, reply.id, options={"temperature": 5}), "BAD_USER_INPUT", "temperature"),
        (edit(rig, question.id, "x", options={"colour": 1}), "BAD_USER_INPUT", "colour"),
        (regenerate(rig, uuid.uuid4()), "NOT_FOUND", "not found"),
        (edit(rig, uuid.uuid4(), "x"), "NOT_FOUND", "not found"),
        (regenerate(rig, reply.id, user=stranger), "NOT_FOUND", "not found"),
        (edit(rig, question.id, "x", user=stranger), "NOT_FOUND", "not found"),
    ]
    for stream, code, needle in cases:
        failed = await refused(rig, stream)
        assert (failed.code, needle in failed.reason) == (code, True), failed


async def test_a_message_has_at_most_max_versions(
    rig: ChatRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(branching, "MAX_VERSIONS", 2)
    cid = await rig.conversation()
    question, reply = await exchange(rig, cid, "q")
    done = (await drain(regenerate(rig, reply.id)))[-1]
    assert isinstance(done, Completed)
    edited = (await drain(edit(rig, question.id, "q2")))[-1]
    assert isinstance(edited, Completed)
    for stream in (regenerate(rig, reply.id), edit(rig, question.id, "q3")):
        failed = await refused(rig, stream)
        assert failed.code == "BAD_USER_INPUT"
        assert "already has 2 versions" in failed.reason


async def test_busy_and_full_queue_are_refused_like_send(rig: ChatRig) -> None:
    cid = await rig.conversation()
    question, reply = await exchange(rig, cid, "q")
    rig.engine.script(paced=True)
    running = rig.send(cid, "keeps the conversation busy")
    assert isinstance(await next_event(running), Queued)

    for stream in (regenerate(rig, reply.id), edit(rig, question.id, "x")):
        failed = await refused(rig, stream)
        assert (failed.code, failed.retryable) == ("CONVERSATION_BUSY", True)
    with pytest.raises(ConversationBusyError):
        await rig.service.select_branch(user_id=rig.user, message_id=reply.id)

    # queue_size=1 and the running reply holds it: another conversation finds it full.
    other = await rig.conversation()
    other_question, other_reply = await _stored_pair(rig, other)
    rig.engine.script(paced=True)
    waiting = rig.send(await rig.conversation(), "fills the queue")
    assert isinstance(await next_event(waiting), Queued)
    for stream in (regenerate(rig, other_reply), edit(rig, other_question, "x")):
        failed = await refused(rig, stream)
        assert (failed.code, failed.retryable) == ("QUEUE_FULL", True)
    await running.aclose()
    await waiting.aclose()


async def _stored_pair(rig: ChatRig, cid: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A question and its reply written straight to the store (no engine slot used)."""
    async with rig.store.factory() as uow:
        question = await uow.messages.add(
            user_id=rig.user,
            conversation_id=cid,
            kind=MessageKind.USER,
            text="q",
            status=MessageStatus.COMPLETE,
        )
        reply = await uow.messages.add(
            user_id=rig.user,
            conversation_id=cid,
            kind=MessageKind.BOT,
            text="a",
            status=MessageStatus.COMPLETE,
        )
        await uow.commit()
    return question.id, reply.id


async def test_cancel_keeps_a_regenerated_reply_cancelled_on_its_branch(rig: ChatRig) -> None:
    cid = await rig.conversation()
    _, first = await exchange(rig, cid, "q")
    rig.engine.script("partial ", "text", paced=True)
    stream = regenerate(rig, first.id)
    queued = await next_event(stream)
    assert isinstance(queued, Queued)
    rig.engine.handles[-1].allow(1)
    await next_event(stream)  # the first piece

    assert await rig.service.cancel(user_id=rig.user, message_id=queued.assistant_message_id)
    done = (await drain(stream))[-1]

    assert isinstance(done, Completed)
    assert (done.message.status, done.message.text) == ("CANCELLED", "partial ")
    assert await current_branch(rig, cid) == ["q", "partial "]


async def test_select_branch_of_an_unknown_or_foreign_message_is_not_found(rig: ChatRig) -> None:
    cid = await rig.conversation()
    _, reply = await exchange(rig, cid, "q")
    for user, message in ((rig.user, uuid.uuid4()), (uuid.uuid4(), reply.id)):
        with pytest.raises(NotFoundError):
            await rig.service.select_branch(user_id=user, message_id=message)
    assert rig.store.conversations[cid].current_leaf_id == reply.id


async def test_context_usage_counts_the_current_branch_only(rig: ChatRig) -> None:
    cid = await rig.conversation()
    question, _ = await exchange(rig, cid, "many words " * 10)
    usage = ContextUsageService(
        rig.store.factory, rig.engine, ChatConfig(_env_file=None, system_prompt=SYSTEM_PROMPT)
    )
    before = await usage.usage(user_id=rig.user, conversation_id=cid, text=None)

    await drain(edit(rig, question.id, "few"))
    after = await usage.usage(user_id=rig.user, conversation_id=cid, text=None)

    # The fake counts a token per word plus one per message: 20 words fewer, same count.
    assert before.prompt_tokens - after.prompt_tokens == 20 - 1


async def test_regenerating_on_another_branch_makes_that_branch_current(rig: ChatRig) -> None:
    cid = await rig.conversation()
    question, first = await exchange(rig, cid, "q")
    await drain(edit(rig, question.id, "q, edited"))
    assert await current_branch(rig, cid) == ["q, edited", "Hello, world."]

    rig.engine.script("again")
    done = (await drain(regenerate(rig, first.id)))[-1]

    assert isinstance(done, Completed)
    assert await current_branch(rig, cid) == ["q", "again"]


async def test_select_branch_is_busy_while_a_send_is_being_stored(rig: ChatRig) -> None:
    cid = await rig.conversation()
    _, reply = await exchange(rig, cid, "q")
    gate = asyncio.Event()
    rig.store.commit_gate = gate  # the next send waits in its commit, conversation claimed
    sending = asyncio.create_task(drain(rig.send(cid, "next")))
    await eventually(lambda: rig.store.open_units > 0, "the send stores its exchange")

    with pytest.raises(ConversationBusyError):
        await rig.service.select_branch(user_id=rig.user, message_id=reply.id)

    gate.set()
    done = (await sending)[-1]
    assert isinstance(done, Completed)
    # Free again; under `reply` the newest message is now the reply to "next".
    chosen = await rig.service.select_branch(user_id=rig.user, message_id=reply.id)
    assert chosen.current_leaf_id == done.message.id
