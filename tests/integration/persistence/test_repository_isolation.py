"""Isolation between users on every repository method: to Bob, Alice's ids behave
exactly like ids that do not exist, and nothing Bob does changes Alice's data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import pytest

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import SamplingOptions, Usage

pytestmark = pytest.mark.contract


@dataclass(frozen=True)
class AliceData:
    """Alice's conversation with a finished question and a reply still generating."""

    user_id: uuid.UUID
    conversation_id: uuid.UUID
    question_id: uuid.UUID
    reply_id: uuid.UUID
    updated_at: datetime


@pytest.fixture
async def alice_data(uow: UnitOfWorkFactory, alice: uuid.UUID) -> AliceData:
    async with uow() as unit:
        conversation = await unit.conversations.create(
            user_id=alice, title="Alice's", system_prompt="secret", options=SamplingOptions(seed=1)
        )
        question = await unit.messages.add(
            user_id=alice,
            conversation_id=conversation.id,
            kind=MessageKind.USER,
            text="hi",
            status=MessageStatus.COMPLETE,
        )
        reply = await unit.messages.add(
            user_id=alice,
            conversation_id=conversation.id,
            kind=MessageKind.BOT,
            text="",
            status=MessageStatus.GENERATING,
        )
        await unit.commit()
    return AliceData(alice, conversation.id, question.id, reply.id, conversation.updated_at)


async def _assert_alice_untouched(uow: UnitOfWorkFactory, data: AliceData) -> None:
    async with uow() as unit:
        conversation = await unit.conversations.get(
            user_id=data.user_id, conversation_id=data.conversation_id
        )
        messages = await unit.messages.list_page(
            user_id=data.user_id, conversation_id=data.conversation_id, limit=10, after_seq=None
        )
    assert conversation is not None
    assert (conversation.title, conversation.system_prompt) == ("Alice's", "secret")
    assert conversation.options == SamplingOptions(seed=1)
    assert conversation.updated_at == data.updated_at
    assert [(m.id, m.text, m.status) for m in messages] == [
        (data.question_id, "hi", "COMPLETE"),
        (data.reply_id, "", "GENERATING"),
    ]


@pytest.fixture
def bob_ids(alice_data: AliceData) -> list[uuid.UUID]:
    """Alice's conversation id, then an id nobody has: Bob must see no difference."""
    return [alice_data.conversation_id, uuid.uuid4()]


async def test_conversation_reads(
    uow: UnitOfWorkFactory, alice_data: AliceData, bob: uuid.UUID, bob_ids: list[uuid.UUID]
) -> None:
    async with uow() as unit:
        for conversation_id in bob_ids:
            assert (
                await unit.conversations.get(user_id=bob, conversation_id=conversation_id) is None
            )
            assert (
                await unit.conversations.get_for_update(
                    user_id=bob, conversation_id=conversation_id
                )
                is None
            )
        assert await unit.conversations.list_page(user_id=bob, limit=10, after=None) == []
        after = (alice_data.updated_at, uuid.UUID(int=2**128 - 1))
        assert await unit.conversations.list_page(user_id=bob, limit=10, after=after) == []
        assert await unit.conversations.count(user_id=bob) == 0


async def test_conversation_writes(
    uow: UnitOfWorkFactory, alice_data: AliceData, bob: uuid.UUID, bob_ids: list[uuid.UUID]
) -> None:
    for conversation_id in bob_ids:
        async with uow() as unit:
            changed = await unit.conversations.update(
                user_id=bob, conversation_id=conversation_id, changes={"title": "Bob's now"}
            )
            await unit.conversations.touch(user_id=bob, conversation_id=conversation_id)
            deleted = await unit.conversations.delete(user_id=bob, conversation_id=conversation_id)
            await unit.commit()
        assert changed is None
        assert deleted is False
    await _assert_alice_untouched(uow, alice_data)


async def test_message_reads(
    uow: UnitOfWorkFactory, alice_data: AliceData, bob: uuid.UUID, bob_ids: list[uuid.UUID]
) -> None:
    async with uow() as unit:
        for message_id in (alice_data.question_id, alice_data.reply_id, uuid.uuid4()):
            assert await unit.messages.get(user_id=bob, message_id=message_id) is None
            assert await unit.branches.history(user_id=bob, leaf_id=message_id) == []
        for conversation_id in bob_ids:
            kwargs = {"user_id": bob, "conversation_id": conversation_id}
            assert await unit.messages.list_page(**kwargs, limit=10, after_seq=None) == []
            assert await unit.messages.list_page(**kwargs, limit=10, after_seq=0) == []
            assert (await unit.messages.count_and_generating(**kwargs))[0] == 0
            assert await unit.messages.has_generating(**kwargs) is False


async def test_message_add_refused(
    uow: UnitOfWorkFactory, alice_data: AliceData, bob: uuid.UUID, bob_ids: list[uuid.UUID]
) -> None:
    for conversation_id in bob_ids:
        async with uow() as unit:
            with pytest.raises(LookupError, match="not found"):
                await unit.messages.add(
                    user_id=bob,
                    conversation_id=conversation_id,
                    kind=MessageKind.USER,
                    text="intruder",
                    status=MessageStatus.COMPLETE,
                )
            await unit.commit()
    await _assert_alice_untouched(uow, alice_data)


async def test_message_finish_refused(
    uow: UnitOfWorkFactory, alice_data: AliceData, bob: uuid.UUID
) -> None:
    for message_id in (alice_data.reply_id, alice_data.question_id, uuid.uuid4()):
        async with uow() as unit:
            finished = await unit.messages.finish(
                user_id=bob,
                message_id=message_id,
                text="overwritten",
                status=MessageStatus.COMPLETE,
                finish_reason="stop",
                usage=Usage(completion_tokens=1),
                dropped_messages=None,
            )
            await unit.commit()
        assert finished is None
    await _assert_alice_untouched(uow, alice_data)


async def test_bob_sees_only_his_own(
    uow: UnitOfWorkFactory, alice_data: AliceData, bob: uuid.UUID
) -> None:
    async with uow() as unit:
        mine = await unit.conversations.create(
            user_id=bob, title="Bob's", system_prompt=None, options=SamplingOptions()
        )
        await unit.commit()
    async with uow() as unit:
        page = await unit.conversations.list_page(user_id=bob, limit=10, after=None)
        count = await unit.conversations.count(user_id=bob)
        alice_count = await unit.conversations.count(user_id=alice_data.user_id)
    assert [c.id for c in page] == [mine.id]
    assert (count, alice_count) == (1, 1)
