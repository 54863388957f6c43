"""SqlUnitOfWork: commit, rollback unless committed, sessions closed, row locks."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import uuid

import pytest
from tests.eventually import eventually
from tests.integration.persistence.lock_waits import LockWaits

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.errors import StorageBusyError
from llamaql.ports.repositories import UnitOfWork, UnitOfWorkFactory
from llamaql.ports.values import SamplingOptions

pytestmark = pytest.mark.contract


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
    uow: UnitOfWorkFactory, alice: uuid.UUID, lock_waits: LockWaits
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
        # The second writer reaches the lock and must not get past it while this unit
        # of work still holds the conversation.
        await eventually(lock_waits, what="a second writer waiting for the lock")
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


async def test_returned_values_cannot_change_what_is_stored(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    """What a unit of work returns is a frozen value: it cannot be changed, so nothing
    that reads it can change what is stored (the fake hands out values too)."""
    async with uow() as unit:
        created = await unit.conversations.create(
            user_id=alice, title=None, system_prompt=None, options=SamplingOptions(temperature=0.5)
        )
        await unit.commit()
    async with uow() as unit:
        found = await unit.conversations.get(user_id=alice, conversation_id=created.id)
        assert found is not None
        with pytest.raises(dataclasses.FrozenInstanceError):
            found.title = "changed"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            found.options.temperature = 2.0  # type: ignore[misc]
    async with uow() as unit:
        stored = await unit.conversations.get(user_id=alice, conversation_id=created.id)
    assert stored is not None
    assert (stored.title, stored.options) == (None, SamplingOptions(temperature=0.5))


async def test_get_for_update_serialises_units(
    uow: UnitOfWorkFactory, alice: uuid.UUID, lock_waits: LockWaits
) -> None:
    async with uow() as unit:
        conversation_id = await _create(unit, alice)
        await unit.commit()
    order: list[str] = []
    first_locked = asyncio.Event()

    async def hold(name: str) -> None:
        async with uow() as unit:
            await unit.conversations.get_for_update(user_id=alice, conversation_id=conversation_id)
            order.append(f"{name} locked")
            if name == "a":
                first_locked.set()
                await eventually(lock_waits, what="b waiting for a's lock")
            order.append(f"{name} done")

    first = asyncio.create_task(hold("a"))
    await first_locked.wait()
    await asyncio.gather(first, hold("b"))
    assert order == ["a locked", "a done", "b locked", "b done"]
