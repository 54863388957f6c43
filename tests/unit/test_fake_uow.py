"""The in-memory unit of work keeps the promises of services/ports.py (others rely on it)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from tests.fakes.uow import CommitFailedError, FakeStore

from llamaql.models import MessageKind, MessageStatus
from llamaql.values import SamplingOptions

ALICE = uuid.uuid4()
BOB = uuid.uuid4()


async def _conversation(store: FakeStore, user: uuid.UUID = ALICE) -> uuid.UUID:
    async with store.factory() as uow:
        row = await uow.conversations.create(
            user_id=user, title=None, system_prompt=None, options=SamplingOptions(temperature=0.5)
        )
        await uow.commit()
    return row.id


async def test_writes_are_rolled_back_without_commit() -> None:
    store = FakeStore()
    async with store.factory() as uow:
        await uow.conversations.create(
            user_id=ALICE, title="t", system_prompt=None, options=SamplingOptions()
        )
    assert store.conversations == {}
    assert store.open_units == 0


async def test_commit_failure_keeps_nothing() -> None:
    store = FakeStore()
    store.fail_next_commit = True
    async with store.factory() as uow:
        await uow.conversations.create(
            user_id=ALICE, title="t", system_prompt=None, options=SamplingOptions()
        )
        with pytest.raises(CommitFailedError):
            await uow.commit()
    assert store.conversations == {}


async def test_other_users_see_nothing() -> None:
    store = FakeStore()
    cid = await _conversation(store)
    async with store.factory() as uow:
        message = await uow.messages.add(
            user_id=ALICE,
            conversation_id=cid,
            kind=MessageKind.USER,
            text="hi",
            status=MessageStatus.COMPLETE,
        )
        await uow.commit()
    async with store.factory() as uow:
        assert await uow.conversations.get(user_id=BOB, conversation_id=cid) is None
        assert await uow.conversations.get_for_update(user_id=BOB, conversation_id=cid) is None
        assert await uow.conversations.count(user_id=BOB) == 0
        assert await uow.conversations.list_page(user_id=BOB, limit=10, after=None) == []
        assert (
            await uow.conversations.update(user_id=BOB, conversation_id=cid, changes={"title": "x"})
            is None
        )
        assert await uow.conversations.delete(user_id=BOB, conversation_id=cid) is False
        assert await uow.messages.get(user_id=BOB, message_id=message.id) is None
        assert await uow.branches.history(user_id=BOB, leaf_id=message.id) == []
        assert await uow.messages.count(user_id=BOB, conversation_id=cid) == 0
        assert (
            await uow.messages.finish(
                user_id=BOB,
                message_id=message.id,
                text="x",
                status=MessageStatus.FAILED,
                finish_reason=None,
                usage=None,
                dropped_messages=None,
            )
            is None
        )
        with pytest.raises(LookupError):
            await uow.messages.add(
                user_id=BOB,
                conversation_id=cid,
                kind=MessageKind.USER,
                text="x",
                status=MessageStatus.COMPLETE,
            )
    assert store.messages_of(cid)[0].text == "hi"


async def test_returned_values_cannot_change_what_is_stored() -> None:
    store = FakeStore()
    cid = await _conversation(store)
    async with store.factory() as uow:
        found = await uow.conversations.get(user_id=ALICE, conversation_id=cid)
        assert found is not None
        with pytest.raises(dataclasses.FrozenInstanceError):
            found.title = "changed"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            found.options.temperature = 2.0  # type: ignore[misc]
    assert store.conversations[cid].options == {"temperature": 0.5}
    assert store.conversations[cid].title is None


async def test_get_for_update_serialises_units() -> None:
    store = FakeStore()
    cid = await _conversation(store)
    order: list[str] = []

    async def hold(name: str) -> None:
        async with store.factory() as uow:
            await uow.conversations.get_for_update(user_id=ALICE, conversation_id=cid)
            order.append(f"{name} locked")
            await asyncio.sleep(0)
            order.append(f"{name} done")

    await asyncio.gather(hold("a"), hold("b"))
    assert order == ["a locked", "a done", "b locked", "b done"]


async def test_history_keeps_complete_and_cancelled_in_order() -> None:
    store = FakeStore()
    cid = await _conversation(store)
    async with store.factory() as uow:
        for text, status in [
            ("one", MessageStatus.COMPLETE),
            ("two", MessageStatus.FAILED),
            ("three", MessageStatus.CANCELLED),
            ("four", MessageStatus.GENERATING),
        ]:
            await uow.messages.add(
                user_id=ALICE,
                conversation_id=cid,
                kind=MessageKind.USER,
                text=text,
                status=status,
            )
        await uow.commit()
    async with store.factory() as uow:
        conversation = await uow.conversations.get(user_id=ALICE, conversation_id=cid)
        assert conversation is not None
        history = await uow.branches.history(user_id=ALICE, leaf_id=conversation.current_leaf_id)
        assert [m.text for m in history] == ["one", "three"]
        assert await uow.messages.has_generating(user_id=ALICE, conversation_id=cid)
        assert await uow.messages.mark_interrupted() == 1
        await uow.commit()
    assert [m.status for m in store.messages_of(cid)][-1] == "FAILED"
    assert store.messages_of(cid)[-1].finish_reason == "interrupted"
