"""A request cancelled while its unit of work is closing (graphql-core cancels a query's
other root fields when one fails; a client leaves) must still give its connection back
cleanly: SQLAlchemy logged "Exception during reset" with a CancelledError traceback and
dropped the connection. Found by the reliability suite's fuzz figure."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from sqlalchemy import QueuePool, event
from sqlalchemy.ext.asyncio import AsyncEngine

from llamaql.ports.repositories import UnitOfWorkFactory


async def test_a_cancel_during_close_returns_the_connection_quietly(
    engine: AsyncEngine, uow: UnitOfWorkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    target: asyncio.Task[Any] | None = None

    def cancel_the_request(*_args: Any) -> None:
        # Runs as the pool resets the connection (its rollback), i.e. during close.
        if target is not None:
            target.cancel()

    async def request() -> None:
        async with uow() as unit:
            await unit.conversations.count(user_id=uuid.uuid4())

    event.listen(engine.sync_engine.pool, "reset", cancel_the_request)
    try:
        with caplog.at_level(logging.ERROR):
            target = asyncio.create_task(request())
            with pytest.raises(asyncio.CancelledError):
                await target
            target = None
            await asyncio.sleep(0.2)  # let a shielded close finish
    finally:
        event.remove(engine.sync_engine.pool, "reset", cancel_the_request)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool), pool
    assert pool.checkedout() == 0
    async with uow() as unit:  # the pool still serves
        assert await unit.conversations.count(user_id=uuid.uuid4()) == 0
