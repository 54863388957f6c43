"""sendMessage, regenerate, editMessage, selectBranch and cancelGeneration: context ->
ChatService -> schema types.

A request refused by the service, or failing in a way nobody expected, still ends the
stream with one MessageFailed (the contract's terminal event), never a bare error.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

import punq
import strawberry
from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.enums import ErrorCode
from llamaql.api.events import ChatEvent, MessageCompleted, MessageFailed, MessageQueued, TokenDelta
from llamaql.api.inputs import GenerationOptionsInput
from llamaql.api.types import Conversation, Message
from llamaql.ports.errors import DomainError
from llamaql.services.chat import events as domain
from llamaql.services.chat.service import ChatService
from llamaql.services.ids import parse_id
from llamaql.services.metrics import Metrics

logger = logging.getLogger(__name__)

INTERNAL_REASON = "Internal server error (request {request_id})"

DomainStream = AsyncGenerator[domain.ChatEvent, None]


async def send_message(
    info: Info[Context, None],
    conversation_id: strawberry.ID,
    text: str,
    options: GenerationOptionsInput | None = None,
) -> AsyncGenerator[ChatEvent, None]:
    """Store the message, then stream the reply: MessageQueued, TokenDelta*, one terminal."""

    def open_stream(service: ChatService, user_id: uuid.UUID) -> DomainStream:
        return service.send(
            user_id=user_id,
            conversation_id=parse_id(conversation_id, field="conversationId"),
            text=text,
            options=options.to_dict() if options else None,
        )

    async for event in _relay(info, "sendMessage", open_stream):
        yield event


async def regenerate(
    info: Info[Context, None],
    message_id: strawberry.ID,
    options: GenerationOptionsInput | None = None,
) -> AsyncGenerator[ChatEvent, None]:
    """A new reply beside assistant message `messageId`, streamed like sendMessage's."""

    def open_stream(service: ChatService, user_id: uuid.UUID) -> DomainStream:
        return service.regenerate(
            user_id=user_id,
            message_id=parse_id(message_id, field="messageId"),
            options=options.to_dict() if options else None,
        )

    async for event in _relay(info, "regenerate", open_stream):
        yield event


async def edit_message(
    info: Info[Context, None],
    message_id: strawberry.ID,
    text: str,
    options: GenerationOptionsInput | None = None,
) -> AsyncGenerator[ChatEvent, None]:
    """A new user message beside user message `messageId`, then its reply, streamed like
    sendMessage's."""

    def open_stream(service: ChatService, user_id: uuid.UUID) -> DomainStream:
        return service.edit(
            user_id=user_id,
            message_id=parse_id(message_id, field="messageId"),
            text=text,
            options=options.to_dict() if options else None,
        )

    async for event in _relay(info, "editMessage", open_stream):
        yield event


async def _relay(
    info: Info[Context, None],
    operation: str,
    open_stream: Callable[[ChatService, uuid.UUID], DomainStream],
) -> AsyncGenerator[ChatEvent, None]:
    """The chat service's events as schema events, for every subscription that streams a
    reply. A refusal (even of the ids) is one MessageFailed. Each request is counted in
    the metrics once, when its terminal event is sent (or as CANCELLED when the client
    closes the stream before that)."""
    metrics = info.context.resolve(Metrics)
    try:
        user_id = info.context.require_user()
        stream = open_stream(_chat_service(info), user_id)
    except DomainError as exc:
        metrics.reply_ended(exc.code)
        yield _failed(domain.Failed(exc.code, exc.message, exc.retryable))
        return
    ended = False
    try:
        async with aclosing(stream):
            async for event in stream:
                if isinstance(event, domain.Completed | domain.Failed):
                    ended = _observe(metrics, event)
                yield to_schema(event)
    except Exception:
        request_id = uuid.uuid4().hex
        logger.exception("request %s: %s failed unexpectedly", request_id, operation)
        failure = domain.Failed("INTERNAL", INTERNAL_REASON.format(request_id=request_id), True)
        if not ended:
            ended = _observe(metrics, failure)
        yield _failed(failure)
    finally:
        if not ended:
            metrics.reply_ended("CANCELLED")  # the client closed the stream first


async def select_branch(info: Info[Context, None], message_id: strawberry.ID) -> Conversation:
    """Make the branch through `messageId` (down to its newest leaf) current; NOT_FOUND
    when the message is not the caller's, CONVERSATION_BUSY while a reply is running."""
    user_id = info.context.require_user()
    message = parse_id(message_id, field="messageId")
    chosen = await _chat_service(info).select_branch(user_id=user_id, message_id=message)
    return Conversation.from_value(chosen)


async def cancel_generation(info: Info[Context, None], message_id: strawberry.ID) -> bool:
    """Stop the caller's reply in progress (its partial text is kept, CANCELLED).

    False when the message is not being generated; NOT_FOUND when it is not the caller's.
    """
    user_id = info.context.require_user()
    message = parse_id(message_id, field="messageId")
    return await _chat_service(info).cancel(user_id=user_id, message_id=message)


def _observe(metrics: Metrics, event: domain.Completed | domain.Failed) -> bool:
    """Count a terminal event with the stored reply's usage; True (the request ended)."""
    if isinstance(event, domain.Failed):
        outcome, reply = event.code, event.assistant_message
    else:
        outcome, reply = event.message.status, event.message
    usage = reply.usage if reply else None
    metrics.reply_ended(
        outcome,
        model=reply.model if reply else None,
        completion_tokens=usage.completion_tokens if usage else None,
        prompt_ms=usage.prompt_ms if usage else None,
        tokens_per_second=usage.tokens_per_second if usage else None,
    )
    return True


def _chat_service(info: Info[Context, None]) -> ChatService:
    try:
        return info.context.resolve(ChatService)
    except punq.MissingDependencyError:
        # The app was built without an engine (some tests, or a broken model setup).
        raise DomainError("no model is loaded on this server", code="ENGINE_ERROR") from None


def to_schema(event: domain.ChatEvent) -> ChatEvent:
    """A domain event as its GraphQL union member."""
    if isinstance(event, domain.Queued):
        return MessageQueued(
            user_message=Message.from_value(event.user_message),
            assistant_message_id=strawberry.ID(str(event.assistant_message_id)),
            position=event.position,
            loading=event.loading,
        )
    if isinstance(event, domain.Delta):
        return TokenDelta(message_id=strawberry.ID(str(event.message_id)), text=event.text)
    if isinstance(event, domain.Completed):
        return MessageCompleted(message=Message.from_value(event.message))
    return _failed(event)


def _failed(event: domain.Failed) -> MessageFailed:
    try:
        code = ErrorCode(event.code)
    except ValueError:
        logger.error("unknown error code %r mapped to INTERNAL", event.code)
        code = ErrorCode.INTERNAL
    message = event.assistant_message
    return MessageFailed(
        code=code,
        reason=event.reason,
        retryable=event.retryable,
        assistant_message=Message.from_value(message) if message is not None else None,
    )
