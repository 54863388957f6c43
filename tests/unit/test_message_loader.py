"""The MessagePages loader on the in-memory unit of work: one unit per user and batch."""

from __future__ import annotations

import asyncio
import uuid

from tests.fakes.uow import FakeStore, FakeUnitOfWork

from llamaql.api.loaders import MessagePages
from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.services.conversations import ConversationService, MessagePageRequest

ALICE = uuid.uuid4()
BOB = uuid.uuid4()


async def _conversation_with(service: ConversationService, store: FakeStore, n: int) -> uuid.UUID:
    created = await service.create_conversation(ALICE)
    async with store.factory() as uow:
        for i in range(n):
            await uow.messages.add(
                user_id=ALICE,
                conversation_id=created.id,
                kind=MessageKind.USER,
                text=f"{created.id}-{i}",
                status=MessageStatus.COMPLETE,
            )
        await uow.commit()
    return created.id


async def test_one_batch_one_unit_per_user_and_no_leaks() -> None:
    store = FakeStore()
    service = ConversationService(store.factory)
    ids = [await _conversation_with(service, store, n) for n in (1, 2, 3)]
    opened = 0

    def counting_factory() -> FakeUnitOfWork:
        nonlocal opened
        opened += 1
        return store.factory()

    loader = MessagePages(ConversationService(counting_factory))
    requests = [MessagePageRequest.parse(c, first=20, after=None) for c in ids]
    pages = await asyncio.gather(
        *(loader.load((ALICE, r)) for r in requests),
        loader.load((BOB, requests[2])),  # ALICE's conversation asked for by BOB
    )
    assert [len(p.edges) for p in pages] == [1, 2, 3, 0]
    assert pages[3].total_count == 0
    assert [m.text for _, m in pages[1].edges] == [f"{ids[1]}-0", f"{ids[1]}-1"]
    assert opened == 2  # one for ALICE's three keys, one for BOB's
