"""The `contextUsage` use case: what sending a text now would use of the context.

It prepares the same prompt sendMessage would (the conversation's history, system prompt
and default options, through the engine's own budget), so `promptTokens` is what the send
then reports, and nothing is written or queued.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from llamaql.config import ChatConfig
from llamaql.ports.engine import (
    ContextOverflowError,
    Engine,
    ModelUnavailableError,
    UnknownModelError,
)
from llamaql.ports.errors import BadInputError, DomainError, NotFoundError
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.services.chat.checks import history_limit, prepare_prompt
from llamaql.services.chat.events import conversation_prompt


@dataclass(frozen=True, slots=True)
class ContextUsage:
    """Tokens of the context a send would take; `fits` False when it would overflow."""

    context_size: int
    prompt_tokens: int
    reply_tokens: int
    dropped_messages: int
    fits: bool


class ContextUsageService:
    """Prepares, never submits; one short unit of work to read the conversation."""

    def __init__(self, uow_factory: UnitOfWorkFactory, engine: Engine, config: ChatConfig) -> None:
        self._uow_factory = uow_factory
        self._engine = engine
        self._config = config

    async def usage(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, text: str | None
    ) -> ContextUsage:
        text = text or ""
        if len(text) > self._config.max_message_chars:
            raise BadInputError(
                f"text must be at most {self._config.max_message_chars} characters, got {len(text)}"
            )
        ids = {"user_id": user_id, "conversation_id": conversation_id}
        async with self._uow_factory() as uow:
            conversation = await uow.conversations.get(**ids)
            if conversation is None:
                raise NotFoundError(f"conversation {conversation_id} not found")
            # The current branch, as sendMessage would prompt with it.
            history = await uow.branches.history(
                user_id=user_id,
                leaf_id=conversation.current_leaf_id,
                limit=history_limit(self._engine),
            )
        messages = conversation_prompt(conversation, history, text, self._config.system_prompt)
        model = conversation.model
        try:
            context_size = (await self._engine.model_info(model)).context_size
        except (UnknownModelError, ModelUnavailableError) as exc:
            raise DomainError(str(exc), code=ModelUnavailableError.code) from None
        try:
            prompt = await prepare_prompt(
                self._engine,
                messages,
                conversation.options,
                model=model,
                owner=str(user_id),
                overflow=True,
            )
        except ContextOverflowError as exc:
            return ContextUsage(
                context_size=context_size,
                prompt_tokens=exc.prompt_tokens,
                reply_tokens=exc.reply_tokens,
                dropped_messages=exc.dropped_messages,
                fits=False,
            )
        return ContextUsage(
            context_size=context_size,
            prompt_tokens=len(prompt.tokens),
            reply_tokens=prompt.options.max_tokens,
            dropped_messages=prompt.dropped_messages,
            fits=True,
        )
