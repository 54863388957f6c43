"""The in-memory unit of work's own test knobs: open units counted, commits made to fail.

What it promises as a UnitOfWork (ports/repositories.py) is checked by the repository
contract suite, the one the SQL repositories pass (tests/integration/persistence, the
`contract` marker), which runs on this fake too."""

from __future__ import annotations

import uuid

import pytest
from tests.fakes.uow import CommitFailedError, FakeStore

from llamaql.ports.values import SamplingOptions

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
