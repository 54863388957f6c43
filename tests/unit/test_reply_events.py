"""ReplyStarted's write waits for the first frames that arrived with it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from llamaql.services.chat.reply_events import announce_started


@dataclass
class _Unit:
    order: list[str]
    name: str
    events: Any = None

    def __post_init__(self) -> None:
        self.events = self

    def record(self, **_: object) -> None:
        self.order.append(self.name)

    async def commit(self) -> None:
        return None


@dataclass
class _Reply:
    order: list[str]
    index: int
    user_id: uuid.UUID = field(default_factory=uuid.uuid4)
    conversation_id: uuid.UUID = field(default_factory=uuid.uuid4)
    assistant_message_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def uow_factory(self) -> Any:
        @asynccontextmanager
        async def unit() -> AsyncIterator[_Unit]:
            yield _Unit(self.order, f"write{self.index}")

        return unit


async def test_a_bursts_first_frames_leave_before_its_reply_started_writes() -> None:
    """Replies whose first pieces reach the loop in one pass: each wakes its subscriber
    (which then sends its frame) and starts its ReplyStarted write; no write runs ahead
    of another reply's frame."""
    order: list[str] = []
    loop = asyncio.get_running_loop()
    woken = [loop.create_future() for _ in range(4)]

    async def subscriber(index: int) -> None:
        await woken[index]
        await asyncio.sleep(0)  # the relay's own hop before the send
        order.append(f"frame{index}")

    subscribers = [asyncio.create_task(subscriber(i)) for i in range(4)]
    await asyncio.sleep(0)
    writes = []
    for index in range(4):  # one loop pass: what Generation.run does per first piece
        woken[index].set_result(None)
        writes.append(announce_started(_Reply(order, index)))
    await asyncio.gather(*subscribers, *writes)
    assert order[:4] == [f"frame{i}" for i in range(4)], order
    assert sorted(order[4:]) == [f"write{i}" for i in range(4)]
