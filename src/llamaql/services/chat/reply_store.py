"""A reply's final save: its text, status, reason and usage in one unit of work with the
conversation's touch and its ReplyFinished event; the terminal event that tells it."""

from __future__ import annotations

import logging

from llamaql.ports.engine import GenerationResult, ModelUnavailableError
from llamaql.ports.values import MessageStatus, Usage
from llamaql.services.chat.events import ChatEvent, Completed, Failed
from llamaql.services.chat.reply_events import LiveReply, record_finished

logger = logging.getLogger(__name__)

ENGINE_FAILED = "the model failed while generating the reply; try again"
TAKEN_OVER = "the reply was marked interrupted while it was generated; try again"


async def store_reply(
    reply: LiveReply,
    replica_id: str | None,
    pieces: list[str],
    result: GenerationResult | None,
    error: BaseException | None,
) -> ChatEvent:
    """Save the reply as its result says (FAILED with the pieces when there is none)
    while it is still `replica_id`'s to write; the terminal event for its watchers."""
    if result is None:
        status, reason, text = MessageStatus.FAILED, "error", "".join(pieces)
        usage: Usage | None = None
        dropped = None
    else:
        text = result.text
        status = (
            MessageStatus.CANCELLED
            if result.finish_reason == "cancelled"
            else MessageStatus.COMPLETE
        )
        reason = result.finish_reason
        usage = result.usage
        dropped = result.dropped_messages
    message_id = reply.assistant_message_id
    async with reply.uow_factory() as uow:
        message = await uow.messages.finish(
            user_id=reply.user_id,
            message_id=message_id,
            text=text,
            status=status,
            finish_reason=reason,
            usage=usage,
            dropped_messages=dropped,
            replica_id=replica_id,
        )
        if message is None:
            # Not ours to write any more: the conversation was deleted meanwhile, or
            # recovery took this replica for stopped and marked the reply.
            stored = await uow.messages.get(user_id=reply.user_id, message_id=message_id)
            if stored is None:
                return Failed("NOT_FOUND", "the conversation was deleted", False)
            logger.warning("reply %s was %s before its save", stored.id, stored.status)
            return Failed("ENGINE_ERROR", TAKEN_OVER, True, stored)
        await uow.conversations.touch(user_id=reply.user_id, conversation_id=reply.conversation_id)
        record_finished(uow, reply, status)
        await uow.commit()
    logger.info(
        "reply %s %s (%s, %d completion tokens)",
        message_id,
        status.value,
        reason,
        message.usage.completion_tokens if message.usage is not None else 0,
    )
    if status is MessageStatus.FAILED:
        if error is None:
            logger.error("generation %s ended without a result", message_id)
        if isinstance(error, ModelUnavailableError):  # its load failed: say why
            return Failed(error.code, str(error), False, message)
        return Failed("ENGINE_ERROR", ENGINE_FAILED, True, message)
    return Completed(message)
