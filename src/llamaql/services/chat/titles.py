"""Model-written titles: after an untitled conversation's first reply, the model names it.

The request waits until no chat stream has been open and no reply live (replies outlive
their streams) for `TITLE_QUIET_S` (a user's next message, or the next burst of sends
right after the replies that asked for titles, finds none of a title's work in its way:
its prompt, its steps, its write), then goes to the
engine as a background request: it runs only on an idle engine, yields its sequence to
any reply that arrives (and starts over later), and leaves no KV behind. Only its result
is read. The first-words title stays until the model's arrives, and the model's replaces
it only if it is still that fallback (a rename by the user in between wins). Failures
only log: a title is a nicety.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from llamaql.ports.engine import (
    ChatMessage,
    Engine,
    EngineError,
    GenerationResult,
    Requester,
    SamplingOptions,
)
from llamaql.ports.events import EventKind
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.services.chat.events import title_from

logger = logging.getLogger(__name__)

TITLE_INSTRUCTION = (
    "Write a short title, at most six words, for the conversation below. "
    "Answer with the title only, no quotes."
)
TITLE_OPTIONS = SamplingOptions(temperature=0.0, max_tokens=16)
EXCERPT_CHARS = 600  # of the question and of the answer: enough to name a topic
TITLE_QUIET_S = 0.5


def clean_title(text: str) -> str:
    """The model's answer as a title: its first line, without quotes, labels or Markdown."""
    line = next((part for part in text.splitlines() if part.strip()), "")
    line = re.sub(r"^\s*(title\s*:\s*)", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'`*#").strip()
    return title_from(line) if line else ""


class Titler:
    """Schedules one background title request per first reply; `shutdown` cancels them."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        engine: Engine,
        *,
        enabled: bool,
        quiet: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._engine = engine
        self._enabled = enabled
        self._quiet = quiet  # awaited before a title's work begins
        self._tasks: set[asyncio.Task[Any]] = set()

    def schedule(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        fallback: str,
        question: str,
        answer: str,
        model: str | None = None,
    ) -> None:
        """Ask `model` (the one that wrote the answer; None: the default) for a title."""
        if not self._enabled or not answer.strip():
            return
        task = asyncio.create_task(
            self._write(user_id, conversation_id, fallback, question, answer, model),
            name=f"title-{conversation_id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _write(
        self,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        fallback: str,
        question: str,
        answer: str,
        model: str | None,
    ) -> None:
        if self._quiet is not None:
            await self._quiet()
        try:
            title = await self._ask(str(user_id), str(conversation_id), question, answer, model)
        except EngineError as exc:
            logger.info("no model title for conversation %s: %s", conversation_id, exc)
            return
        if not title:
            return
        ids = {"user_id": user_id, "conversation_id": conversation_id}
        async with self._uow_factory() as uow:
            current = await uow.conversations.get_for_update(**ids)
            if current is None or current.title != fallback:
                return  # deleted, or renamed meanwhile
            await uow.conversations.update(**ids, changes={"title": title})
            uow.events.record(
                user_id=user_id,
                conversation_id=conversation_id,
                kind=EventKind.CONVERSATION_UPDATED,
            )
            await uow.commit()
        logger.info("conversation %s titled by the model", conversation_id)

    async def _ask(
        self, user: str, conversation: str, question: str, answer: str, model: str | None
    ) -> str:
        exchange = f"User: {question[:EXCERPT_CHARS]}\n\nAssistant: {answer[:EXCERPT_CHARS]}"
        messages = [ChatMessage("system", TITLE_INSTRUCTION), ChatMessage("user", exchange)]
        prompt = await self._engine.prepare(messages, TITLE_OPTIONS, model=model, owner=user)
        handle = self._engine.submit(
            prompt, Requester(user, f"{conversation}/title"), background=True
        )
        result: GenerationResult | None = None
        async for event in handle.events():
            if isinstance(event, GenerationResult):
                result = event
        return clean_title(result.text) if result is not None else ""
