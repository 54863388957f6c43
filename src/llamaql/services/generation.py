"""One live generation: the task that drives an engine handle to the end and saves it.

The task, not the subscriber, owns the engine handle. It forwards engine events to the
subscriber's queue and writes the assistant message exactly once at the end, so a client
that goes away (or a cancelGeneration) only cancels the handle: the partial text is
still saved, as CANCELLED.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from dataclasses import dataclass, field

from llamaql.engine.types import (
    EngineError,
    GenerationHandle,
    GenerationResult,
    QueuePosition,
    TextPiece,
)
from llamaql.models import Message, MessageStatus
from llamaql.services.chat_events import ChatEvent, Completed, Delta, Failed, Queued
from llamaql.services.ports import UnitOfWorkFactory

logger = logging.getLogger(__name__)

ENGINE_FAILED = "the model failed while generating the reply; try again"
TAKEN_OVER = "the reply was marked interrupted while it was generated; try again"
SAVE_RETRY_PAUSES_S = (0.1, 0.5, 2.0)  # between tries of the final save


@dataclass(eq=False)
class Generation:
    """A submitted reply: its ids, its engine handle and its subscriber's event queue."""

    uow_factory: UnitOfWorkFactory
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    user_message: Message
    assistant_message_id: uuid.UUID
    handle: GenerationHandle
    # The first-words title this exchange gave an untitled conversation, if it did.
    fallback_title: str | None = None
    save_retry_pauses: tuple[float, ...] = SAVE_RETRY_PAUSES_S
    checkpoint_every_s: float = 0.0  # 0: the text is written only at the end
    # The replica generating it: its writes move the reply only while it is still theirs.
    replica_id: str | None = None
    events: asyncio.Queue[ChatEvent] = field(default_factory=asyncio.Queue)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _position: int | None = None
    _checkpoint: asyncio.Task[None] | None = None
    _checkpointed_at: float = 0.0

    def cancel(self) -> None:
        """Stop the engine within one token; run() still saves what was produced."""
        self.handle.cancel()

    async def run(self) -> ChatEvent:
        """Consume the engine's events to the end, save the reply, emit (and return) the
        terminal event."""
        pieces: list[str] = []
        result: GenerationResult | None = None
        error: BaseException | None = None
        try:
            async for event in self.handle.events():
                if isinstance(event, QueuePosition):
                    self._queued(event.position)
                elif isinstance(event, TextPiece):
                    self._queued(0)
                    pieces.append(event.text)
                    self.events.put_nowait(Delta(self.assistant_message_id, event.text))
                    self._maybe_checkpoint(pieces)
                else:
                    result = event
        except asyncio.CancelledError:
            # Only the event loop's teardown cancels this task; the reply stays GENERATING
            # and start-up recovery marks it interrupted.
            self.handle.cancel()
            raise
        except EngineError as exc:
            error = exc
            logger.warning("generation %s failed: %s", self.assistant_message_id, exc)
        except Exception as exc:
            error = exc
            logger.exception("generation %s failed unexpectedly", self.assistant_message_id)
        self._queued(0)
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])  # it only writes while GENERATING
        terminal = await self._save_or_mark_failed(pieces, result, error)
        self.events.put_nowait(terminal)
        return terminal

    async def _save_or_mark_failed(
        self, pieces: list[str], result: GenerationResult | None, error: BaseException | None
    ) -> ChatEvent:
        """Save the reply, retrying a failed write (a locked or briefly unreachable
        database); if every try fails, store it FAILED with its text in a fresh unit of
        work, so the conversation is not left GENERATING (busy) until a restart."""
        for attempt, pause in enumerate((*self.save_retry_pauses, None), start=1):
            try:
                return await self._save(pieces, result, error)
            except Exception:
                logger.warning(
                    "saving reply %s failed (try %d)",
                    self.assistant_message_id,
                    attempt,
                    exc_info=pause is None,
                )
            if pause is not None:
                await asyncio.sleep(pause)
        text = result.text if result is not None else "".join(pieces)
        try:
            await self._save([text], None, error)
        except Exception:
            logger.exception("could not even mark reply %s failed", self.assistant_message_id)
        return Failed("INTERNAL", "the reply could not be saved; try again", True)

    def _maybe_checkpoint(self, pieces: list[str]) -> None:
        """Write the text so far every `checkpoint_every_s`, in a task of its own (never
        on the stream's path, never two at once), so a crash keeps most of it."""
        if self.checkpoint_every_s <= 0 or self._checkpoint is not None:
            return
        now = asyncio.get_running_loop().time()
        if now - self._checkpointed_at < self.checkpoint_every_s:
            return
        self._checkpointed_at = now
        self._checkpoint = asyncio.create_task(self._write_checkpoint("".join(pieces)))
        self._checkpoint.add_done_callback(self._checkpoint_done)

    async def _write_checkpoint(self, text: str) -> None:
        async with self.uow_factory() as uow:
            await uow.messages.checkpoint(
                user_id=self.user_id,
                message_id=self.assistant_message_id,
                text=text,
                replica_id=self.replica_id,
            )
            await uow.commit()

    def _checkpoint_done(self, task: asyncio.Task[None]) -> None:
        self._checkpoint = None
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                "checkpoint of reply %s failed: %s", self.assistant_message_id, task.exception()
            )

    def _queued(self, position: int) -> None:
        # The first event is always Queued; later ones only when the position moves.
        if position != self._position:
            self._position = position
            self.events.put_nowait(Queued(self.user_message, self.assistant_message_id, position))

    async def _save(
        self, pieces: list[str], result: GenerationResult | None, error: BaseException | None
    ) -> ChatEvent:
        if result is None:
            status, reason, text = MessageStatus.FAILED, "error", "".join(pieces)
            usage: dict[str, float | int] = {}
            dropped = None
        else:
            text = result.text
            status = (
                MessageStatus.CANCELLED
                if result.finish_reason == "cancelled"
                else MessageStatus.COMPLETE
            )
            reason = result.finish_reason
            usage = dataclasses.asdict(result.usage)
            dropped = result.dropped_messages
        async with self.uow_factory() as uow:
            message = await uow.messages.finish(
                user_id=self.user_id,
                message_id=self.assistant_message_id,
                text=text,
                status=status,
                finish_reason=reason,
                usage=usage,
                dropped_messages=dropped,
                replica_id=self.replica_id,
            )
            if message is None:
                # Not ours to write any more: the conversation was deleted meanwhile, or
                # recovery took this replica for stopped and marked the reply.
                stored = await uow.messages.get(
                    user_id=self.user_id, message_id=self.assistant_message_id
                )
                if stored is None:
                    return Failed("NOT_FOUND", "the conversation was deleted", False)
                logger.warning("reply %s was %s before its save", stored.id, stored.status)
                return Failed("ENGINE_ERROR", TAKEN_OVER, True, stored)
            await uow.conversations.touch(
                user_id=self.user_id, conversation_id=self.conversation_id
            )
            await uow.commit()
        logger.info(
            "reply %s %s (%s, %d completion tokens)",
            self.assistant_message_id,
            status.value,
            reason,
            message.completion_tokens or 0,
        )
        if status is MessageStatus.FAILED:
            if error is None:
                logger.error("generation %s ended without a result", self.assistant_message_id)
            return Failed("ENGINE_ERROR", ENGINE_FAILED, True, message)
        return Completed(message)
