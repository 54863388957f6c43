"""DatabaseShares on the in-memory unit of work: per-user slots, waits, QUEUE_FULL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tests.fakes.uow import FakeStore

from llamaql.persistence.db_share import DatabaseShareError, DatabaseShares
from llamaql.ports.acting_user import acting_for, stop_acting
from llamaql.ports.repositories import UnitOfWorkFactory

ALICE = uuid.uuid4()
BOB = uuid.uuid4()


async def _hold(factory: UnitOfWorkFactory, user: uuid.UUID | None, until: asyncio.Event) -> None:
    token = acting_for(user)
    try:
        async with factory() as uow:
            await uow.conversations.count(user_id=user or ALICE)
            await until.wait()
    finally:
        stop_acting(token)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_user_beyond_the_limit_waits_while_another_user_goes_ahead() -> None:
    store = FakeStore()
    shares = DatabaseShares(units_per_user=2, wait_s=30)
    factory = shares.wrap(store.factory)
    release = asyncio.Event()
    alice = [asyncio.create_task(_hold(factory, ALICE, release)) for _ in range(5)]
    await _settle()
    assert (shares.in_use(ALICE), store.open_units) == (2, 2)  # three of hers wait
    bob_done = asyncio.Event()
    bob = asyncio.create_task(_hold(factory, BOB, bob_done))
    await _settle()
    assert (shares.in_use(BOB), store.open_units) == (1, 3)  # not behind ALICE's line
    bob_done.set()
    await bob
    release.set()
    await asyncio.gather(*alice)
    assert store.max_open_units == 3
    assert (shares.in_use(ALICE), shares.in_use(BOB), store.open_units) == (0, 0, 0)


async def test_waiting_past_the_limit_is_a_retryable_queue_full_and_opens_nothing() -> None:
    store = FakeStore()
    shares = DatabaseShares(units_per_user=1, wait_s=0.05)
    factory = shares.wrap(store.factory)
    release = asyncio.Event()
    holder = asyncio.create_task(_hold(factory, ALICE, release))
    await _settle()
    with pytest.raises(DatabaseShareError) as refused:
        await _hold(factory, ALICE, release)
    assert (refused.value.code, refused.value.retryable) == ("QUEUE_FULL", True)
    assert "1 operations running" in refused.value.message
    assert store.open_units == 1
    release.set()
    await holder
    await _hold(factory, ALICE, release)  # the slot is free again
    assert shares.in_use(ALICE) == 0


async def test_the_servers_own_work_is_not_capped() -> None:
    store = FakeStore()
    shares = DatabaseShares(units_per_user=1, wait_s=0.05)
    factory = shares.wrap(store.factory)
    release = asyncio.Event()
    tasks = [asyncio.create_task(_hold(factory, None, release)) for _ in range(4)]
    await _settle()
    assert store.open_units == 4
    release.set()
    await asyncio.gather(*tasks)


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    store = FakeStore()
    shares = DatabaseShares(units_per_user=1, wait_s=30)
    factory = shares.wrap(store.factory)
    release = asyncio.Event()
    holder = asyncio.create_task(_hold(factory, ALICE, release))
    waiter = asyncio.create_task(_hold(factory, ALICE, release))
    await _settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert shares.in_use(ALICE) == 0
    assert shares._slots == {}  # nothing kept for idle users


def test_units_per_user_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1, got 0"):
        DatabaseShares(units_per_user=0, wait_s=1)
