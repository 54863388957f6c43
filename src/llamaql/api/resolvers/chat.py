"""sendMessage, regenerate, editMessage, replyStream, selectBranch and cancelGeneration:
context -> ChatService -> schema types.

A request refused by the service, or failing in a way nobody expected, still ends the
stream with one MessageFailed (the contract's terminal event), never a bare error.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Annotated

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

CANCEL_ON_CLOSE = strawberry.argument(
    description="true: closing this stream cancels the reply (its text is kept, CANCELLED). "
    "false (default): the reply runs to its end whether or not a stream watches it; "
    "cancelGeneration stops it, and replyStream follows it again."
)
AFTER = strawberry.argument(
    description="Where to start in the reply's text, in Unicode code points (characters; "
    "JavaScript: Array.from(text).length of the text already shown, not text.length); "
    "0 (default) sends the whole text so far"
)


async def send_message(
    info: Info[Context, None],
    conversation_id: strawberry.ID,
    text: str,
    options: GenerationOptionsInput | None = None,
    cancel_on_close: Annotated[bool | None, CANCEL_ON_CLOSE] = False,
) -> AsyncGenerator[ChatEvent, None]:
    """Store the message, then stream the reply: MessageQueued, TokenDelta*, one terminal."""

    def open_stream(service: ChatService, user_id: uuid.UUID) -> DomainStream:
        return service.send(
            user_id=user_id,
            conversation_id=parse_id(conversation_id, field="conversationId"),
            text=text,
            options=options.to_dict() if options else None,
            cancel_on_close=bool(cancel_on_close),
        )

    async for event in _relay(info, "sendMessage", open_stream):
        yield event


async def regenerate(
    info: Info[Context, None],
    message_id: strawberry.ID,
    options: GenerationOptionsInput | None = None,
    cancel_on_close: Annotated[bool | None, CANCEL_ON_CLOSE] = False,
) -> AsyncGenerator[ChatEvent, None]:
    """A new reply beside assistant message `messageId`, streamed like sendMessage's."""

    def open_stream(service: ChatService, user_id: uuid.UUID) -> DomainStream:
        return service.regenerate(
            user_id=user_id,
            message_id=parse_id(message_id, field="messageId"),
            options=options.to_dict() if options else None,
            cancel_on_close=bool(cancel_on_close),
        )

    async for event in _relay(info, "regenerate", open_stream):
        yield event


async def edit_message(
    info: Info[Context, None],
    message_id: strawberry.ID,
    text: str,
    options: GenerationOptionsInput | None = None,
    cancel_on_close: Annotated[bool | None, CANCEL_ON_CLOSE] = False,
) -> AsyncGenerator[ChatEvent, None]:
    """A new user message beside user message `messageId`, then its reply, streamed like
    sendMessage's."""

    def open_stream(service: ChatService, user_id: uuid.UUID) -> DomainStream:
        return service.edit(
            user_id=user_id,
            message_id=parse_id(message_id, field="messageId"),
            text=text,
            options=options.to_dict() if options else None,
            cancel_on_close=bool(cancel_on_close),
        )

    async for event in _relay(info, "editMessage", open_stream):
        yield event


async def reply_stream(
    info: Info[Context, None],
    message_id: strawberry.ID,
    after: Annotated[int | None, AFTER] = 0,
) -> AsyncGenerator[ChatEvent, None]:
    """The caller's reply `messageId` from character `after`, then live, then its end."""

    def open_stream(service: ChatService, user_id: uuid.UUID) -> DomainStream:
        return service.watch(
            user_id=user_id, message_id=parse_id(message_id, field="messageId"), after=after or 0
        )

    async for event in _relay(info, "replyStream", open_stream, counted=False):
        yield event


async def _relay(
    info: Info[Context, None],
    operation: str,
    open_stream: Callable[[ChatService, uuid.UUID], DomainStream],
    *,
    counted: bool = True,
) -> AsyncGenerator[ChatEvent, None]:
    """The chat service's events as schema events, for every subscription that streams a
    reply. A refusal (even of the ids) is one MessageFailed. A request that `counted`
    and was refused before it stored a reply is counted in the metrics here; a stored
    reply is counted by the chat service when it ends, whether or not a stream still
    watched it (closing a stream leaves the reply running)."""
    metrics = info.context.resolve(Metrics) if counted else None
    try:
        user_id = info.context.require_user()
        stream = open_stream(_chat_service(info), user_id)
    except DomainError as exc:
        if metrics is not None:
            metrics.reply_ended(exc.code)
        yield _failed(domain.Failed(exc.code, exc.message, exc.retryable))
        return
    stored = False  # a reply was stored (MessageQueued seen): the service counts it
    try:
        async with aclosing(stream):
            async for event in stream:
                stored = stored or isinstance(event, domain.Queued)
                if isinstance(event, domain.Failed) and not stored and metrics is not None:
                    metrics.reply_finished(event)
                yield to_schema(event)
    except Exception:
        request_id = uuid.uuid4().hex
        logger.exception("request %s: %s failed unexpectedly", request_id, operation)
        failure = domain.Failed("INTERNAL", INTERNAL_REASON.format(request_id=request_id), True)
        if not stored and metrics is not None:
            metrics.reply_finished(failure)
        yield _failed(failure)


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
