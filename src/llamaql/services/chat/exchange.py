"""Storing one exchange and submitting its reply, in the caller's unit of work.

The prompt is submitted to the engine first, so that the model evaluates it while the
exchange is written: the conversation is locked and re-checked (another replica
generating, or an exchange that ended since the history was read: busy either way), the
user's live replies are counted under their lock (`reply_limit.ReplyLimit`), both
messages are added and the title or activity time updated. A refusal or failure there
cancels the submitted request, whose events nobody has read: the client sees nothing of
the reply before the exchange is stored. The caller commits, and cancels the handle if
the commit fails.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from llamaql.ports.engine import Engine, GenerationHandle, PreparedPrompt, QueueFullError, Requester
from llamaql.ports.errors import ConversationBusyError, NotFoundError
from llamaql.ports.events import EventKind
from llamaql.ports.repositories import UnitOfWork
from llamaql.ports.values import Message, MessageKind, MessageStatus
from llamaql.services.branching import Turn
from llamaql.services.chat.checks import queue_full_error
from llamaql.services.chat.events import title_from
from llamaql.services.chat.reply_limit import ReplyLimit


@dataclass(frozen=True, slots=True)
class StoredExchange:
    user_message: Message
    reply_id: uuid.UUID
    handle: GenerationHandle


async def store_exchange(
    uow: UnitOfWork,
    engine: Engine,
    *,
    user_id: uuid.UUID,
    turn: Turn,
    seen: int,
    prompt: PreparedPrompt,
    replica_id: str | None = None,
    reply_limit: ReplyLimit | None = None,
) -> StoredExchange:
    """Submit, then lock, re-check, add both messages (only the reply when the turn
    answers a stored user message again); the caller commits. The reply's branch becomes
    current. With `reply_limit`, a user at it is refused (ReplyLimitError) before anything
    is added. The request is cancelled if anything here fails."""
    conversation = turn.conversation
    try:
        handle = engine.submit(prompt, Requester(str(user_id), str(conversation.id)))
    except QueueFullError:
        engine.reply_abandoned()
        raise queue_full_error() from None
    try:
        user_message, reply_id = await _write_exchange(
            uow,
            user_id=user_id,
            turn=turn,
            seen=seen,
            replica_id=replica_id,
            reply_limit=reply_limit,
            model=prompt.model,
        )
    except BaseException:
        handle.cancel()
        raise
    return StoredExchange(user_message, reply_id, handle)


async def _write_exchange(
    uow: UnitOfWork,
    *,
    user_id: uuid.UUID,
    turn: Turn,
    seen: int,
    replica_id: str | None,
    reply_limit: ReplyLimit | None,
    model: str | None,
) -> tuple[Message, uuid.UUID]:
    conversation, text = turn.conversation, turn.text
    ids = {"user_id": user_id, "conversation_id": conversation.id}
    locked = await uow.conversations.get_for_update(**ids)
    if locked is None:
        raise NotFoundError(f"conversation {conversation.id} not found")
    if reply_limit is None:
        count, generating = await uow.messages.count_and_generating(**ids)
        live = 0
    else:  # the busy re-check and the user's live replies, locked, in one statement
        count, generating, live = await reply_limit.counts(uow, **ids, lock=True)
    if generating or count != seen:
        raise ConversationBusyError()
    if reply_limit is not None:
        reply_limit.refuse_at(live)
    user_message = turn.answered or await uow.messages.add(
        user_id=user_id,
        conversation_id=conversation.id,
        parent_id=turn.parent_id,
        kind=MessageKind.USER,
        text=text,
        status=MessageStatus.COMPLETE,
    )
    reply = await uow.messages.add(
        user_id=user_id,
        conversation_id=conversation.id,
        parent_id=user_message.id,
        kind=MessageKind.BOT,
        text="",
        status=MessageStatus.GENERATING,
        replica_id=replica_id,  # the reply is this replica's until it is saved
        model=model,  # the model that writes it
    )
    if locked.title is None:
        await uow.conversations.update(**ids, changes={"title": title_from(text)})
        uow.events.record(
            user_id=user_id, conversation_id=conversation.id, kind=EventKind.CONVERSATION_UPDATED
        )
    else:
        await uow.conversations.touch(**ids)
    # The reply's branch is current now: ReplyQueued says so (no BranchSelected).
    uow.events.record(
        user_id=user_id,
        conversation_id=conversation.id,
        kind=EventKind.REPLY_QUEUED,
        message_id=reply.id,
    )
    return user_message, reply.id
