"""The message tree on SQLite and PostgreSQL: parents, siblings, the current branch, and
nothing of it reachable by another user."""

from __future__ import annotations

import uuid

import pytest

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.repositories import AFTER_CURRENT_LEAF, Append, UnitOfWorkFactory
from llamaql.ports.values import Message, SamplingOptions

pytestmark = pytest.mark.contract


async def _conversation(uow: UnitOfWorkFactory, user: uuid.UUID) -> uuid.UUID:
    async with uow() as unit:
        created = await unit.conversations.create(
            user_id=user, title="tree", system_prompt=None, options=SamplingOptions()
        )
        await unit.commit()
    return created.id


async def _add(
    uow: UnitOfWorkFactory,
    user: uuid.UUID,
    conversation_id: uuid.UUID,
    text: str,
    *,
    parent_id: uuid.UUID | Append | None = AFTER_CURRENT_LEAF,
    kind: MessageKind = MessageKind.USER,
) -> Message:
    async with uow() as unit:
        message = await unit.messages.add(
            user_id=user,
            conversation_id=conversation_id,
            parent_id=parent_id,
            kind=kind,
            text=text,
            status=MessageStatus.COMPLETE,
        )
        await unit.commit()
    return message


async def _leaf(uow: UnitOfWorkFactory, user: uuid.UUID, conversation_id: uuid.UUID) -> object:
    async with uow() as unit:
        conversation = await unit.conversations.get(user_id=user, conversation_id=conversation_id)
    assert conversation is not None
    return conversation.current_leaf_id


async def _history(uow: UnitOfWorkFactory, user: uuid.UUID, leaf: uuid.UUID | None) -> list[str]:
    async with uow() as unit:
        return [m.text for m in await unit.branches.history(user_id=user, leaf_id=leaf)]


async def test_messages_follow_the_current_leaf_and_become_it(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice)
    assert await _leaf(uow, alice, conversation) is None
    question = await _add(uow, alice, conversation, "q")
    answer = await _add(uow, alice, conversation, "a", kind=MessageKind.BOT)

    assert question.parent_id is None
    assert answer.parent_id == question.id
    assert await _leaf(uow, alice, conversation) == answer.id
    assert await _history(uow, alice, answer.id) == ["q", "a"]


async def test_a_sibling_makes_its_branch_current_and_keeps_the_other(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice)
    question = await _add(uow, alice, conversation, "q")
    first = await _add(uow, alice, conversation, "a1", kind=MessageKind.BOT)
    follow_up = await _add(uow, alice, conversation, "q2")
    second = await _add(uow, alice, conversation, "a2", parent_id=question.id, kind=MessageKind.BOT)

    assert await _leaf(uow, alice, conversation) == second.id
    assert await _history(uow, alice, second.id) == ["q", "a2"]
    assert await _history(uow, alice, follow_up.id) == ["q", "a1", "q2"]
    async with uow() as unit:
        siblings = await unit.branches.sibling_ids(
            user_id=alice, message_ids=[first.id, second.id, question.id, follow_up.id]
        )
    assert siblings == {
        first.id: [first.id, second.id],
        second.id: [first.id, second.id],
        question.id: [question.id],
        follow_up.id: [follow_up.id],
    }


async def test_edited_first_messages_are_sibling_roots(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice)
    other = await _conversation(uow, alice)  # its root is not a sibling
    await _add(uow, alice, other, "elsewhere")
    original = await _add(uow, alice, conversation, "first try")
    await _add(uow, alice, conversation, "reply", kind=MessageKind.BOT)
    edited = await _add(uow, alice, conversation, "second try", parent_id=None)

    async with uow() as unit:
        siblings = await unit.branches.sibling_ids(user_id=alice, message_ids=[edited.id])
    assert siblings == {edited.id: [original.id, edited.id]}
    assert await _history(uow, alice, edited.id) == ["second try"]


async def test_history_keeps_only_prompt_statuses_and_the_newest_limit(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice)
    for text in ("one", "two", "three"):
        await _add(uow, alice, conversation, text)
    async with uow() as unit:
        failed = await unit.messages.add(
            user_id=alice,
            conversation_id=conversation,
            kind=MessageKind.BOT,
            text="broken",
            status=MessageStatus.FAILED,
        )
        await unit.commit()
    async with uow() as unit:
        newest = await unit.branches.history(user_id=alice, leaf_id=failed.id, limit=2)
    assert [m.text for m in newest] == ["two", "three"]
    assert await _history(uow, alice, None) == []


async def test_newest_leaf_under_a_message_and_selecting_it(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice)
    question = await _add(uow, alice, conversation, "q")
    first = await _add(uow, alice, conversation, "a1", kind=MessageKind.BOT)
    deep = await _add(uow, alice, conversation, "q2")
    second = await _add(uow, alice, conversation, "a2", parent_id=question.id, kind=MessageKind.BOT)

    async with uow() as unit:
        under_first = await unit.branches.newest_leaf_under(user_id=alice, message_id=first.id)
        under_question = await unit.branches.newest_leaf_under(
            user_id=alice, message_id=question.id
        )
        selected = await unit.branches.set_current_leaf(
            user_id=alice, conversation_id=conversation, leaf_id=deep.id
        )
        await unit.commit()

    assert under_first is not None
    assert under_first.id == deep.id
    assert under_question is not None
    assert under_question.id == second.id
    assert selected
    assert await _leaf(uow, alice, conversation) == deep.id


async def test_another_users_tree_is_out_of_reach(
    uow: UnitOfWorkFactory, alice: uuid.UUID, bob: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice)
    question = await _add(uow, alice, conversation, "secret")
    answer = await _add(uow, alice, conversation, "also secret", kind=MessageKind.BOT)
    bobs = await _conversation(uow, bob)

    async with uow() as unit:
        assert await unit.branches.history(user_id=bob, leaf_id=answer.id) == []
        assert await unit.branches.sibling_ids(user_id=bob, message_ids=[answer.id]) == {}
        assert await unit.branches.newest_leaf_under(user_id=bob, message_id=question.id) is None
        for target, leaf in ((conversation, question.id), (bobs, question.id)):
            assert not await unit.branches.set_current_leaf(
                user_id=bob, conversation_id=target, leaf_id=leaf
            )
        await unit.commit()
    assert await _leaf(uow, alice, conversation) == answer.id
    assert await _leaf(uow, bob, bobs) is None


async def test_a_leaf_from_another_conversation_is_refused(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    one = await _conversation(uow, alice)
    two = await _conversation(uow, alice)
    kept = await _add(uow, alice, one, "in one")
    stranger = await _add(uow, alice, two, "in two")

    async with uow() as unit:
        moved = await unit.branches.set_current_leaf(
            user_id=alice, conversation_id=one, leaf_id=stranger.id
        )
        await unit.commit()
    assert not moved
    assert await _leaf(uow, alice, one) == kept.id
