"""The live feed's outbox, on the fake, SQLite and PostgreSQL (contract tests), and
what only PostgreSQL can show: a user's keys are taken in commit order (the advisory
lock), so a reader never sees a later event before an earlier one commits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from tests.eventually import eventually
from tests.integration.persistence.lock_waits import LockWaits

from llamaql.persistence.models import utc_now
from llamaql.persistence.repositories.events import SqlEventRepository
from llamaql.ports.events import EventKind
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import MessageStatus, SamplingOptions
from llamaql.services.conversations import ConversationService


@pytest.mark.contract
async def test_events_commit_with_their_change_in_order_for_their_user_only(
    uow: UnitOfWorkFactory, alice: uuid.UUID, bob: uuid.UUID
) -> None:
    conversation, message = uuid.uuid4(), uuid.uuid4()
    async with uow() as unit:
        head = await unit.events.head(user_id=alice)
        unit.events.record(
            user_id=alice, conversation_id=conversation, kind=EventKind.CONVERSATION_CREATED
        )
        unit.events.record(
            user_id=bob, conversation_id=uuid.uuid4(), kind=EventKind.CONVERSATION_CREATED
        )
        unit.events.record(
            user_id=alice,
            conversation_id=conversation,
            kind=EventKind.REPLY_FINISHED,
            message_id=message,
            status=MessageStatus.CANCELLED,
        )
        await unit.commit()
    async with uow() as unit:
        mine = await unit.events.after(user_id=alice, key=head, limit=10)
        newest = await unit.events.head(user_id=alice)
        first_only = await unit.events.after(user_id=alice, key=head, limit=1)
        rest = await unit.events.after(user_id=alice, key=mine[0].key, limit=10)
    assert [e.kind for e in mine] == [EventKind.CONVERSATION_CREATED, EventKind.REPLY_FINISHED]
    assert {e.user_id for e in mine} == {alice}
    assert mine[0].key < mine[1].key == newest
    assert (mine[1].message_id, mine[1].status) == (message, MessageStatus.CANCELLED)
    assert mine[0].message_id is None
    assert mine[0].status is None
    assert first_only == mine[:1]
    assert rest == mine[1:]


@pytest.mark.contract
async def test_a_rolled_back_change_writes_no_event(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    async with uow() as unit:
        head = await unit.events.head(user_id=alice)

    async def failing_change() -> None:
        async with uow() as unit:
            created = await unit.conversations.create(
                user_id=alice, title="gone", system_prompt=None, options=SamplingOptions()
            )
            unit.events.record(
                user_id=alice, conversation_id=created.id, kind=EventKind.CONVERSATION_CREATED
            )
            raise RuntimeError("the change fails before its commit")

    with pytest.raises(RuntimeError):
        await failing_change()
    async with uow() as unit:
        assert await unit.events.after(user_id=alice, key=head, limit=10) == []
        assert await unit.conversations.count(user_id=alice) == 0
    # A refused update (not the user's conversation) writes none either.
    service = ConversationService(uow)
    with pytest.raises(Exception, match="not found"):
        await service.update_conversation(alice, uuid.uuid4(), {"title": "x"})
    async with uow() as unit:
        assert await unit.events.after(user_id=alice, key=head, limit=10) == []


@pytest.mark.contract
async def test_old_events_are_deleted_in_bounded_batches(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    async with uow() as unit:
        for _ in range(3):
            unit.events.record(
                user_id=alice, conversation_id=uuid.uuid4(), kind=EventKind.CONVERSATION_DELETED
            )
        await unit.commit()
    future = utc_now() + timedelta(seconds=60)
    async with uow() as unit:
        assert await unit.events.delete_before(cutoff=utc_now() - timedelta(hours=1), limit=10) == 0
        assert await unit.events.delete_before(cutoff=future, limit=2) == 2
        await unit.commit()
    async with uow() as unit:
        left = await unit.events.after(user_id=alice, key=0, limit=10)
        assert await unit.events.delete_before(cutoff=future, limit=2) == 1
        await unit.commit()
    async with uow() as unit:
        assert await unit.events.after(user_id=alice, key=0, limit=10) == []
    assert len(left) == 1


async def test_postgres_takes_a_users_keys_in_commit_order(
    backend: str, uow: UnitOfWorkFactory, lock_waits: LockWaits, alice: uuid.UUID
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has one writer: its keys are in commit order by construction")
    async with uow() as first:
        first.events.record(
            user_id=alice, conversation_id=uuid.uuid4(), kind=EventKind.CONVERSATION_CREATED
        )
        assert isinstance(first.events, SqlEventRepository)
        await first.events.flush()  # inserted under the user's lock, not committed yet

        async def second() -> None:
            async with uow() as unit:
                unit.events.record(
                    user_id=alice, conversation_id=uuid.uuid4(), kind=EventKind.REPLY_QUEUED
                )
                await unit.commit()

        later = asyncio.create_task(second())
        await eventually(lock_waits, holds=lambda waiting: waiting == 1)
        async with uow() as reader:
            assert await reader.events.after(user_id=alice, key=0, limit=10) == []
        await first.commit()
    await later
    async with uow() as reader:
        events = await reader.events.after(user_id=alice, key=0, limit=10)
    assert [e.kind for e in events] == [EventKind.CONVERSATION_CREATED, EventKind.REPLY_QUEUED]
