"""A ChatService wired to the in-memory fakes, and helpers to drive its streams."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.engine import FakeEngine
from tests.fakes.uow import FakeStore

from llamaql.config import load_config
from llamaql.container import create_chat_service
from llamaql.persistence.models import Message
from llamaql.ports.values import SamplingOptions
from llamaql.services.chat.events import ChatEvent
from llamaql.services.chat.service import ChatService

WAIT_S = 5.0
SYSTEM_PROMPT = "Answer in plain text."


@dataclass
class ChatRig:
    """The service under test and the fakes behind it."""

    store: FakeStore
    engine: FakeEngine
    service: ChatService
    user: uuid.UUID = field(default_factory=uuid.uuid4)

    async def conversation(
        self, *, user: uuid.UUID | None = None, title: str | None = None, **kwargs: Any
    ) -> uuid.UUID:
        async with self.store.factory() as uow:
            row = await uow.conversations.create(
                user_id=user or self.user,
                title=title,
                system_prompt=kwargs.get("system_prompt"),
                options=SamplingOptions.from_dict(kwargs.get("options", {})),
            )
            await uow.commit()
        return row.id

    def send(
        self, conversation_id: uuid.UUID, text: str = "Hi there", **kwargs: Any
    ) -> AsyncGenerator[ChatEvent, None]:
        return self.service.send(
            user_id=kwargs.pop("user", self.user),
            conversation_id=conversation_id,
            text=text,
            options=kwargs.pop("options", None),
            cancel_on_close=kwargs.pop("cancel_on_close", False),
        )

    def messages(self, conversation_id: uuid.UUID) -> list[Message]:
        return self.store.messages_of(conversation_id)


def make_rig(*, queue_size: int = 8, context_tokens: int = 4096, **settings: Any) -> ChatRig:
    store = FakeStore()
    engine = FakeEngine(queue_size=queue_size, context_tokens=context_tokens)
    config = load_config(
        _env_file=None,
        system_prompt=SYSTEM_PROMPT,
        # One user's many replies are what most tests send: the per-user limit has its
        # own tests (test_chat_reply_limit.py), which pass it (None: the default).
        **{"auto_title": False, "max_live_replies_per_user": 64, **settings},
    )
    service = create_chat_service(config, store.factory, engine, save_retry_pauses=(0.0, 0.0, 0.0))
    return ChatRig(store, engine, service)


async def next_event(stream: AsyncGenerator[ChatEvent, None]) -> ChatEvent:
    """The stream's next event, failing the test instead of hanging."""
    return await asyncio.wait_for(anext(stream), WAIT_S)


async def drain(stream: AsyncGenerator[ChatEvent, None]) -> list[ChatEvent]:
    """Every remaining event of a stream (it ends after its terminal event)."""
    return [event async for event in _bounded(stream)]


async def _bounded(stream: AsyncGenerator[ChatEvent, None]) -> AsyncGenerator[ChatEvent, None]:
    while True:
        try:
            yield await next_event(stream)
        except StopAsyncIteration:
            return


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until predicate() holds; fail naming what was awaited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.001)
