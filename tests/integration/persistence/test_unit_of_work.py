"""SqlUnitOfWork: commit, rollback unless committed, sessions closed, row locks."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import pytest

from llamaql.models import MessageKind, MessageStatus
from llamaql.services.errors import StorageBusyError
from llamaql.services.ports import UnitOfWork, UnitOfWorkFactory
from llamaql.values import SamplingOptions


class Boom(Exception):
    """Raised inside a unit of work by a test."""


async def _count(uow: UnitOfWorkFactory, user_id: uuid.UUID) -> int:
    async with uow() as unit:
        return await unit.conversations.count(user_id=user_id)


async def _create(unit: UnitOfWork, user_id: uuid.UUID) -> uuid.UUID:
    conversation = await unit.conversations.create(
        user_id=user_id, title="t", system_prompt=None, options=SamplingOptions()
    )
    return conversation.id


async def test_commit_persists(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async with uow() as unit:
        await _create(unit, alice)
        await unit.commit()
    assert await _count(uow, alice) == 1


async def test_exit_without_commit_rolls_back(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async with uow() as unit:
        await _create(unit, alice)
        assert await unit.conversations.count(user_id=alice) == 1
    assert await _count(uow, alice) == 0


async def test_exception_rolls_back(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async def create_then_fail() -> None:
        async with uow() as unit:
            await _create(unit, alice)
            raise Boom

    with pytest.raises(Boom):
        await create_then_fail()
    assert await _count(uow, alice) == 0


async def test_writes_after_commit_need_another_commit(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    async with uow() as unit:
        await _create(unit, alice)
        await unit.commit()
        await _create(unit, alice)
    assert await _count(uow, alice) == 1


async def test_results_stay_readable_after_exit(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async with uow() as unit:
        conversation_id = await _create(unit, alice)
        await unit.commit()
    # A read-only unit of work ends without commit(); what it returned must stay usable.
    async with uow() as unit:
        loaded = await unit.conversations.get(user_id=alice, conversation_id=conversation_id)
        page = await unit.conversations.list_page(user_id=alice, limit=5, after=None)
    assert loaded is not None
    assert (loaded.title, loaded.options) == ("t", SamplingOptions())
    assert [c.title for c in page] == ["t"]


async def test_a_unit_of_work_opens_once(uow: UnitOfWorkFactory) -> None:
    unit = uow()
    async with unit:
        with pytest.raises(RuntimeError, match="already open"):
            await unit.__aenter__()


async def test_concurrent_appends_to_one_conversation_get_distinct_seqs(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    """The second writer waits for the first one's lock instead of reusing its seq."""
    async with uow() as unit:
        conversation_id = await _create(unit, alice)
        await unit.commit()

    async def append(text: str) -> int:
        async with uow() as unit:
            message = await unit.messages.add(
                user_id=alice,
                conversation_id=conversation_id,
                kind=MessageKind.USER,
                text=text,
                status=MessageStatus.COMPLETE,
            )
            await unit.commit()
            return message.seq

    async with uow() as first:
        locked = await first.conversations.get_for_update(
            user_id=alice, conversation_id=conversation_id
        )
        assert locked is not None
        second = asyncio.create_task(append("second"))
        # Give the second writer time to reach the lock; it must not get past it
        # while this unit of work still holds the conversation.
        await asyncio.sleep(0.2)
        assert not second.done()
        await first.messages.add(
            user_id=alice,
            conversation_id=conversation_id,
            kind=MessageKind.USER,
            text="first",
            status=MessageStatus.COMPLETE,
        )
        await first.commit()
    assert await second == 2

    async with uow() as unit:
        texts = await unit.messages.list_page(
            user_id=alice, conversation_id=conversation_id, limit=10, after_seq=None
        )
    assert [(m.seq, m.text) for m in texts] == [(1, "first"), (2, "second")]


async def test_a_database_locked_past_its_wait_is_a_retryable_busy_error(
    uow: UnitOfWorkFactory, alice: uuid.UUID, db_url: str, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's single writer; PostgreSQL's SQLSTATEs are unit-tested")
    holder = sqlite3.connect(db_url.removeprefix("sqlite+aiosqlite:///"))
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock

    async def create() -> None:
        async with uow() as unit:
            await _create(unit, alice)
            await unit.commit()

    try:
        with pytest.raises(StorageBusyError) as busy:
            await create()
    finally:
        holder.rollback()
        holder.close()
    assert (busy.value.code, busy.value.retryable) == ("QUEUE_FULL", True)
    assert await _count(uow, alice) == 0
