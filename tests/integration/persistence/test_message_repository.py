"""SqlMessageRepository on a real database (SQLite file, PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete
from sqlmodel import col

from llamaql.persistence.db import SessionFactory
from llamaql.persistence.models import Conversation, MessageKind, MessageStatus
from llamaql.ports.repositories import UnitOfWork, UnitOfWorkFactory
from llamaql.ports.values import Message as MessageValue
from llamaql.ports.values import SamplingOptions, Usage

pytestmark = pytest.mark.contract


async def _conversation(uow: UnitOfWorkFactory, user_id: uuid.UUID) -> uuid.UUID:
    async with uow() as unit:
        conversation = await unit.conversations.create(
            user_id=user_id, title=None, system_prompt=None, options=SamplingOptions()
        )
        await unit.commit()
    return conversation.id


async def _add(
    uow: UnitOfWorkFactory,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID,
    text: str,
    status: MessageStatus = MessageStatus.COMPLETE,
    kind: MessageKind = MessageKind.USER,
) -> MessageValue:
    async with uow() as unit:
        message = await unit.messages.add(
            user_id=user_id, conversation_id=conversation_id, kind=kind, text=text, status=status
        )
        await unit.commit()
    return message


async def test_add_assigns_seq_per_conversation(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    one = await _conversation(uow, alice)
    two = await _conversation(uow, alice)
    async with uow() as unit:
        seqs = []
        for conversation_id in (one, one, two, one):
            message = await unit.messages.add(
                user_id=alice,
                conversation_id=conversation_id,
                kind=MessageKind.USER,
                text="x",
                status=MessageStatus.COMPLETE,
            )
            seqs.append(message.seq)
        await unit.commit()
    assert seqs == [1, 2, 1, 3]


async def test_add_then_get_round_trips(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    conversation_id = await _conversation(uow, alice)
    added = await _add(
        uow, alice, conversation_id, "héllo 👋", MessageStatus.GENERATING, MessageKind.BOT
    )
    async with uow() as unit:
        loaded = await unit.messages.get(user_id=alice, message_id=added.id)
    assert loaded is not None
    assert isinstance(loaded.id, uuid.UUID)
    assert (loaded.conversation_id, loaded.user_id) == (conversation_id, alice)
    assert (loaded.kind, loaded.text, loaded.status) == (2, "héllo 👋", "GENERATING")
    assert loaded.seq == 1
    assert loaded.created_at.utcoffset() == timedelta(0)
    assert loaded.created_at == added.created_at


async def test_add_to_unknown_conversation_raises(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async with uow() as unit:
        with pytest.raises(LookupError, match="not found"):
            await unit.messages.add(
                user_id=alice,
                conversation_id=uuid.uuid4(),
                kind=MessageKind.USER,
                text="x",
                status=MessageStatus.COMPLETE,
            )


async def test_get_unknown_is_none(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async with uow() as unit:
        assert await unit.messages.get(user_id=alice, message_id=uuid.uuid4()) is None


async def test_list_page_oldest_first_after_seq(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    conversation_id = await _conversation(uow, alice)
    for i in range(5):
        await _add(uow, alice, conversation_id, f"m{i}")
    async with uow() as unit:
        first = await unit.messages.list_page(
            user_id=alice, conversation_id=conversation_id, limit=2, after_seq=None
        )
        rest = await unit.messages.list_page(
            user_id=alice, conversation_id=conversation_id, limit=10, after_seq=first[-1].seq
        )
    assert [m.text for m in first] == ["m0", "m1"]
    assert [m.text for m in rest] == ["m2", "m3", "m4"]


async def test_a_page_reads_each_message_as_get_does(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    # Pages read their rows by position (rows.message_from_page_row), get() by name: a reply
    # with every column set must come back the same both ways.
    conversation_id = await _conversation(uow, alice)
    question = await _add(uow, alice, conversation_id, "Capital of France?")
    reply = await _add(uow, alice, conversation_id, "", MessageStatus.GENERATING, MessageKind.BOT)
    usage = Usage(prompt_tokens=30, cached_prompt_tokens=12, completion_tokens=8, prompt_ms=1.5)
    async with uow() as unit:
        await unit.messages.finish(
            user_id=alice,
            message_id=reply.id,
            text="Paris.",
            status=MessageStatus.COMPLETE,
            finish_reason="stop",
            usage=usage,
            dropped_messages=2,
        )
        await unit.commit()
    async with uow() as unit:
        page = await unit.messages.list_page(
            user_id=alice, conversation_id=conversation_id, limit=10, after_seq=None
        )
        got = [await unit.messages.get(user_id=alice, message_id=m.id) for m in (question, reply)]
    assert list(page) == got
    assert page[1].usage == usage
    assert (page[1].text, page[1].finish_reason, page[1].dropped_messages) == ("Paris.", "stop", 2)
    assert (page[0].usage, page[0].parent_id, page[1].parent_id) == (None, None, question.id)


async def test_pages_of_several_conversations_keep_each_ones_messages(
    uow: UnitOfWorkFactory, alice: uuid.UUID, bob: uuid.UUID
) -> None:
    one = await _conversation(uow, alice)
    two = await _conversation(uow, alice)
    theirs = await _conversation(uow, bob)
    for text in ("m0", "m1", "m2"):
        await _add(uow, alice, one, text)
    for text in ("n0", "n1"):
        await _add(uow, alice, two, text)
    await _add(uow, bob, theirs, "not alice's")
    async with uow() as unit:
        pages = await unit.messages.list_pages(
            user_id=alice, after_seqs={one: None, two: 1, theirs: None}, limit=2
        )
        alone = await unit.messages.list_pages(user_id=alice, after_seqs={theirs: None}, limit=2)
        counts = await unit.messages.counts(user_id=alice, conversation_ids=[one, two, theirs])
    assert [m.text for m in pages[one]] == ["m0", "m1"]
    assert [m.text for m in pages[two]] == ["n1"]
    assert pages[theirs] == []
    assert alone == {theirs: []}
    assert counts == {one: 3, two: 2, theirs: 0}


async def test_count(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    conversation_id = await _conversation(uow, alice)
    other_id = await _conversation(uow, alice)
    for _ in range(3):
        await _add(uow, alice, conversation_id, "x")
    await _add(uow, alice, other_id, "x")
    async with uow() as unit:
        assert (
            await unit.messages.count_and_generating(user_id=alice, conversation_id=conversation_id)
        )[0] == 3


async def _current_leaf(
    unit: UnitOfWork, user: uuid.UUID, conversation_id: uuid.UUID
) -> uuid.UUID | None:
    conversation = await unit.conversations.get(user_id=user, conversation_id=conversation_id)
    assert conversation is not None
    return conversation.current_leaf_id


async def test_history_keeps_complete_and_cancelled_in_order(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation_id = await _conversation(uow, alice)
    await _add(uow, alice, conversation_id, "complete")
    await _add(uow, alice, conversation_id, "failed", MessageStatus.FAILED)
    await _add(uow, alice, conversation_id, "cancelled", MessageStatus.CANCELLED)
    await _add(uow, alice, conversation_id, "generating", MessageStatus.GENERATING)
    async with uow() as unit:
        leaf = await _current_leaf(unit, alice, conversation_id)
        history = await unit.branches.history(user_id=alice, leaf_id=leaf)
    assert [m.text for m in history] == ["complete", "cancelled"]


async def test_history_limit_keeps_the_newest_in_order(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation_id = await _conversation(uow, alice)
    for text in ("m0", "m1", "m2", "m3", "m4"):
        await _add(uow, alice, conversation_id, text)
    await _add(uow, alice, conversation_id, "failed", MessageStatus.FAILED)
    async with uow() as unit:
        leaf = await _current_leaf(unit, alice, conversation_id)
        newest = await unit.branches.history(user_id=alice, leaf_id=leaf, limit=3)
    assert [m.text for m in newest] == ["m2", "m3", "m4"]


async def test_checkpoint_writes_only_a_generating_reply_of_its_owner(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation_id = await _conversation(uow, alice)
    live = await _add(uow, alice, conversation_id, "", MessageStatus.GENERATING, MessageKind.BOT)
    done = await _add(uow, alice, conversation_id, "final", MessageStatus.COMPLETE, MessageKind.BOT)
    async with uow() as unit:
        assert await unit.messages.checkpoint(user_id=alice, message_id=live.id, text="so far")
        assert not await unit.messages.checkpoint(user_id=alice, message_id=done.id, text="x")
        assert not await unit.messages.checkpoint(
            user_id=uuid.uuid4(), message_id=live.id, text="stolen"
        )
        await unit.commit()
    async with uow() as unit:
        stored = await unit.messages.get(user_id=alice, message_id=live.id)
        final = await unit.messages.get(user_id=alice, message_id=done.id)
    assert stored is not None
    assert final is not None
    assert (stored.text, stored.status) == ("so far", MessageStatus.GENERATING.value)
    assert final.text == "final"


async def test_has_generating(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    conversation_id = await _conversation(uow, alice)
    await _add(uow, alice, conversation_id, "done")
    async with uow() as unit:
        assert not await unit.messages.has_generating(
            user_id=alice, conversation_id=conversation_id
        )
    await _add(uow, alice, conversation_id, "", MessageStatus.GENERATING, MessageKind.BOT)
    async with uow() as unit:
        assert await unit.messages.has_generating(user_id=alice, conversation_id=conversation_id)


async def test_count_and_generating_is_count_and_has_generating_in_one(
    uow: UnitOfWorkFactory, alice: uuid.UUID, bob: uuid.UUID
) -> None:
    conversation_id = await _conversation(uow, alice)
    ids = {"user_id": alice, "conversation_id": conversation_id}
    async with uow() as unit:
        assert await unit.messages.count_and_generating(**ids) == (0, False)
    await _add(uow, alice, conversation_id, "done")
    await _add(uow, alice, conversation_id, "done too")
    async with uow() as unit:
        assert await unit.messages.count_and_generating(**ids) == (2, False)
    await _add(uow, alice, conversation_id, "", MessageStatus.GENERATING, MessageKind.BOT)
    async with uow() as unit:
        assert await unit.messages.count_and_generating(**ids) == (3, True)
        # Another user sees nothing of it.
        other = {"user_id": bob, "conversation_id": conversation_id}
        assert await unit.messages.count_and_generating(**other) == (0, False)


async def test_finish_writes_the_final_state(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    conversation_id = await _conversation(uow, alice)
    reply = await _add(uow, alice, conversation_id, "", MessageStatus.GENERATING, MessageKind.BOT)
    usage = Usage(
        prompt_tokens=30,
        cached_prompt_tokens=12,
        completion_tokens=8,
        prompt_ms=15.5,
        generation_ms=99.0,
        tokens_per_second=80.8,
    )
    async with uow() as unit:
        finished = await unit.messages.finish(
            user_id=alice,
            message_id=reply.id,
            text="Paris.",
            status=MessageStatus.COMPLETE,
            finish_reason="stop",
            usage=usage,
            dropped_messages=2,
        )
        await unit.commit()
    async with uow() as unit:
        loaded = await unit.messages.get(user_id=alice, message_id=reply.id)
        missing = await unit.messages.finish(
            user_id=alice,
            message_id=uuid.uuid4(),
            text="",
            status=MessageStatus.FAILED,
            finish_reason=None,
            usage=None,
            dropped_messages=None,
        )
    assert finished is not None
    assert loaded is not None
    assert (loaded.text, loaded.status, loaded.finish_reason) == ("Paris.", "COMPLETE", "stop")
    assert loaded.usage == finished.usage == usage
    assert loaded.dropped_messages == 2
    assert loaded.updated_at >= reply.updated_at
    assert missing is None


async def test_finish_without_usage_stores_none(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    conversation_id = await _conversation(uow, alice)
    reply = await _add(uow, alice, conversation_id, "", MessageStatus.GENERATING, MessageKind.BOT)
    async with uow() as unit:
        failed = await unit.messages.finish(
            user_id=alice,
            message_id=reply.id,
            text="x",
            status=MessageStatus.FAILED,
            finish_reason="error",
            usage=None,
            dropped_messages=None,
        )
        await unit.commit()
    async with uow() as unit:
        loaded = await unit.messages.get(user_id=alice, message_id=reply.id)
    assert failed is not None
    assert loaded is not None
    assert (loaded.text, loaded.status, loaded.usage) == ("x", "FAILED", None)


async def test_mark_interrupted_fails_every_users_generating_messages(
    uow: UnitOfWorkFactory, alice: uuid.UUID, bob: uuid.UUID
) -> None:
    alice_conversation = await _conversation(uow, alice)
    bob_conversation = await _conversation(uow, bob)
    question = await _add(uow, alice, alice_conversation, "question")
    alice_reply = await _add(
        uow, alice, alice_conversation, "half", MessageStatus.GENERATING, MessageKind.BOT
    )
    bob_reply = await _add(
        uow, bob, bob_conversation, "", MessageStatus.GENERATING, MessageKind.BOT
    )

    async with uow() as unit:
        assert len(await unit.messages.mark_interrupted()) == 2
        await unit.commit()

    async with uow() as unit:
        for user_id, message_id in ((alice, alice_reply.id), (bob, bob_reply.id)):
            message = await unit.messages.get(user_id=user_id, message_id=message_id)
            assert message is not None
            assert (message.status, message.finish_reason) == ("FAILED", "interrupted")
        kept = await unit.messages.get(user_id=alice, message_id=question.id)
        partial = await unit.messages.get(user_id=alice, message_id=alice_reply.id)
        assert await unit.messages.mark_interrupted() == []
    assert kept is not None
    assert (kept.status, kept.text) == ("COMPLETE", "question")
    assert partial is not None
    assert partial.text == "half"


async def test_deleting_a_conversation_row_cascades_to_messages(
    uow: UnitOfWorkFactory, session_factory: SessionFactory, alice: uuid.UUID
) -> None:
    """The foreign key itself cascades (SQLite: the app's connections enable it)."""
    conversation_id = await _conversation(uow, alice)
    await _add(uow, alice, conversation_id, "x")
    async with session_factory() as session:
        await session.exec(delete(Conversation).where(col(Conversation.id) == conversation_id))
        await session.commit()
    async with uow() as unit:
        assert (
            await unit.messages.count_and_generating(user_id=alice, conversation_id=conversation_id)
        )[0] == 0
