"""The per-user reply limit on a real database (SQLite file, PostgreSQL): what counts as
a user's live reply, and two units of work racing at the limit less one, of which
exactly one may add its reply (the user's lock)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col
from tests.eventually import eventually
from tests.integration.persistence.lock_waits import LockWaits

from llamaql.persistence.db import SessionFactory
from llamaql.persistence.models import Message, MessageKind, MessageStatus, utc_now
from llamaql.ports.errors import ReplyLimitError
from llamaql.ports.repositories import UnitOfWork, UnitOfWorkFactory
from llamaql.ports.values import Message as MessageValue
from llamaql.ports.values import SamplingOptions
from llamaql.services.chat.reply_limit import ReplyLimit

pytestmark = pytest.mark.contract

WAIT_S = 30.0


async def _conversation(uow: UnitOfWorkFactory, user_id: uuid.UUID) -> uuid.UUID:
    async with uow() as unit:
        conversation = await unit.conversations.create(
            user_id=user_id, title=None, system_prompt=None, options=SamplingOptions()
        )
        await unit.commit()
    return conversation.id


async def _add_reply(
    unit: UnitOfWork, user_id: uuid.UUID, conversation_id: uuid.UUID, status: MessageStatus
) -> MessageValue:
    return await unit.messages.add(
        user_id=user_id,
        conversation_id=conversation_id,
        kind=MessageKind.BOT,
        text="",
        status=status,
        replica_id="replica-a",
    )


async def _reply(uow: UnitOfWorkFactory, user_id: uuid.UUID, status: MessageStatus) -> MessageValue:
    conversation_id = await _conversation(uow, user_id)
    async with uow() as unit:
        reply = await _add_reply(unit, user_id, conversation_id, status)
        await unit.commit()
    return reply


async def _count(uow: UnitOfWorkFactory, user_id: uuid.UUID, alive_within_s: float | None) -> int:
    async with uow() as unit:
        return await unit.messages.count_live_replies(
            user_id=user_id, alive_within_s=alive_within_s
        )


async def test_live_replies_are_the_users_generating_ones_of_live_replicas(
    uow: UnitOfWorkFactory, session_factory: SessionFactory, alice: uuid.UUID, bob: uuid.UUID
) -> None:
    live = [await _reply(uow, alice, MessageStatus.GENERATING) for _ in range(2)]
    await _reply(uow, alice, MessageStatus.COMPLETE)
    await _reply(uow, alice, MessageStatus.FAILED)
    await _reply(uow, bob, MessageStatus.GENERATING)
    assert await _count(uow, alice, None) == 2
    assert await _count(uow, alice, 30.0) == 2
    assert await _count(uow, bob, None) == 1

    # A replica that stopped beating: its reply is not counted among replicas (the
    # sweep will mark it), still counted by a process alone on its database.
    async with session_factory() as session:
        await session.exec(
            update(Message)
            .where(col(Message.id) == live[0].id)
            .values(heartbeat_at=utc_now() - timedelta(seconds=31))
        )
        await session.commit()
    assert await _count(uow, alice, 30.0) == 1
    assert await _count(uow, alice, None) == 2


async def test_exchange_counts_are_the_busy_check_and_the_live_replies_in_one(
    uow: UnitOfWorkFactory, session_factory: SessionFactory, alice: uuid.UUID, bob: uuid.UUID
) -> None:
    live = [await _reply(uow, alice, MessageStatus.GENERATING) for _ in range(2)]
    done = await _reply(uow, alice, MessageStatus.COMPLETE)
    await _reply(uow, bob, MessageStatus.GENERATING)

    async def counts(
        user_id: uuid.UUID, conversation_id: uuid.UUID, alive_within_s: float | None
    ) -> tuple[int, bool, int]:
        async with uow() as unit:
            return await unit.messages.exchange_counts(
                user_id=user_id, conversation_id=conversation_id, alive_within_s=alive_within_s
            )

    assert await counts(alice, live[0].conversation_id, None) == (1, True, 2)
    assert await counts(alice, done.conversation_id, 30.0) == (1, False, 2)
    # Another user's conversation is empty to this one; the live replies are their own.
    assert await counts(bob, done.conversation_id, None) == (0, False, 1)

    async with session_factory() as session:  # a replica that stopped beating
        await session.exec(
            update(Message)
            .where(col(Message.id) == live[0].id)
            .values(heartbeat_at=utc_now() - timedelta(seconds=31))
        )
        await session.commit()
    assert await counts(alice, live[0].conversation_id, 30.0) == (1, True, 1)
    assert await counts(alice, live[0].conversation_id, None) == (1, True, 2)


async def _admit(
    uow: UnitOfWorkFactory, limit: ReplyLimit, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> bool:
    """What storing an exchange does: count under the user's lock, add, commit."""
    async with uow() as unit:
        try:
            await limit.check(unit, user_id=user_id, lock=True)
        except ReplyLimitError:
            return False
        await _add_reply(unit, user_id, conversation_id, MessageStatus.GENERATING)
        await unit.commit()
    return True


async def test_two_units_at_the_limit_less_one_admit_exactly_one(
    uow: UnitOfWorkFactory, lock_waits: LockWaits, alice: uuid.UUID
) -> None:
    limit = ReplyLimit(2, alive_within_s=30.0)
    await _reply(uow, alice, MessageStatus.GENERATING)  # one live: one more fits
    first_cid, second_cid = [await _conversation(uow, alice) for _ in range(2)]

    async with uow() as first:
        await limit.check(first, user_id=alice, lock=True)  # passes: 1 of 2
        await _add_reply(first, alice, first_cid, MessageStatus.GENERATING)
        # The second unit counts while the first has added but not committed.
        second = asyncio.create_task(_admit(uow, limit, alice, second_cid))
        await eventually(lock_waits, WAIT_S, what="the second unit waiting for the user's lock")
        assert not second.done()
        await first.commit()
    admitted = await asyncio.wait_for(second, WAIT_S)

    assert admitted is False
    assert await _count(uow, alice, None) == 2
    with pytest.raises(ReplyLimitError, match="you already have 2 replies"):
        async with uow() as unit:
            await limit.check(unit, user_id=alice)
