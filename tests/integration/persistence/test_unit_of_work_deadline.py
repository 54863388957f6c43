"""A unit of work's database deadline counts from when it was made: time spent waiting
for one of its user's database units is part of it, so a request fails within
LLAMAQL_DB_TIMEOUT_SECONDS even when the user's other units hang on a database that does
not answer (the db_outage figure's blackhole: 9.96 s for a 5 s timeout before this)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from llamaql.persistence.db import SessionFactory
from llamaql.persistence.db_share import DatabaseShares
from llamaql.persistence.repositories import make_uow_factory
from llamaql.ports.acting_user import acting_for, stop_acting
from llamaql.ports.errors import DatabaseUnavailableError

TIMEOUT_S = 0.3


async def test_waiting_for_a_database_unit_counts_toward_the_deadline(
    session_factory: SessionFactory, alice: uuid.UUID
) -> None:
    shares = DatabaseShares(units_per_user=1, wait_s=10.0)
    untimed = shares.wrap(make_uow_factory(session_factory))
    timed = shares.wrap(make_uow_factory(session_factory, timeout_s=TIMEOUT_S))
    token = acting_for(alice)
    try:
        held, release = asyncio.Event(), asyncio.Event()

        async def hold_the_only_unit() -> None:  # as a request hanging on the database
            async with untimed() as uow:
                await uow.conversations.count(user_id=alice)
                held.set()
                await release.wait()

        async def read() -> int:
            async with timed() as uow:
                return await uow.conversations.count(user_id=alice)

        holder = asyncio.create_task(hold_the_only_unit())
        await held.wait()
        reader = asyncio.create_task(read())
        await asyncio.sleep(3 * TIMEOUT_S)  # the reader waits for its user's unit
        release.set()
        await holder
        # Its time went waiting: it fails as the database being unavailable, at once,
        # instead of starting a whole timeout of its own.
        with pytest.raises(DatabaseUnavailableError):
            await reader
    finally:
        stop_acting(token)
