"""One live generation: the task that drives an engine handle to the end and saves it.

The task, not a subscriber, owns the engine handle. It publishes engine events to the
reply's feed (`reply_feed.ReplyFeed`: the sender's stream and any replyStream watchers)
and writes the assistant message exactly once at the end. A client that goes away only
leaves the feed; a cancelGeneration (or a sender's `cancelOnClose`) cancels the handle,
and the partial text is still saved, as CANCELLED. The saved text is exactly the
concatenation of the published pieces, so every watcher ends with the stored text.

A final save the database refuses for now (unreachable, or busy past its waits) does not
lose the reply: the subscriber hears a retryable MessageFailed at once, and the text
stays in memory while the save is retried with backoff, for up to `save_retry_s`
(LLAMAQL_SAVE_RETRY_SECONDS). Meanwhile the reply is `saving`: still this process's
(its heartbeat keeps it alive), and a cancel or the conversation's next send cuts the
pause short (`nudge`) instead of finding it busy.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from dataclasses import dataclass, field, replace

from llamaql.ports.engine import (
    EngineError,
    GenerationHandle,
    GenerationResult,
    QueuePosition,
    TextPiece,
)
from llamaql.ports.errors import DatabaseUnavailableError, DomainError
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import Message
from llamaql.services.chat.checkpoints import Checkpoints
from llamaql.services.chat.events import ChatEvent, Delta, Failed, Queued
from llamaql.services.chat.reply_events import announce_started
from llamaql.services.chat.reply_feed import FeedWatcher, ReplyFeed
from llamaql.services.chat.reply_store import store_reply
from llamaql.services.chat.save_retries import SAVE_RETRY_PAUSES_S, SAVE_RETRY_S, SaveRetries

logger = logging.getLogger(__name__)

KEPT = (
    "the reply could not be saved yet (the database is unavailable or busy); the server "
    "keeps it and saves it once the database answers"
)


@dataclass(eq=False)
class Generation:
    """A submitted reply: its ids, its engine handle and its feed of events."""

    uow_factory: UnitOfWorkFactory
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    user_message: Message
    assistant_message_id: uuid.UUID
    handle: GenerationHandle
    # The first-words title this exchange gave an untitled conversation, if it did.
    fallback_title: str | None = None
    save_retry_pauses: tuple[float, ...] = SAVE_RETRY_PAUSES_S
    save_retry_s: float = SAVE_RETRY_S
    checkpoint_every_s: float = 0.0  # 0: the text is written only at the end
    # The replica generating it: its writes move the reply only while it is still theirs.
    replica_id: str | None = None
    feed: ReplyFeed = field(init=False)
    sender: FeedWatcher | None = None  # the sending stream's watcher, made at submit
    # Set once the watchers were sent the terminal event: the reply is saved, or ended
    # and kept while its save waits for the database.
    told: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # saved, or given up
    # The reply ended and its subscriber was told so, but the database has not taken it
    # yet: its save is being retried.
    saving: bool = False
    _position: tuple[int, bool] | None = None
    _checkpoints: Checkpoints = field(init=False)
    _started: asyncio.Task[None] | None = None  # its ReplyStarted event being written
    _told: ChatEvent | None = None  # the terminal event the subscriber was sent
    _retries: SaveRetries = field(init=False)

    def __post_init__(self) -> None:
        self._retries = SaveRetries(self.save_retry_pauses, self.save_retry_s)
        self.feed = ReplyFeed(self.assistant_message_id)
        self._checkpoints = Checkpoints(
            self.uow_factory,
            user_id=self.user_id,
            message_id=self.assistant_message_id,
            replica_id=self.replica_id,
            every_s=self.checkpoint_every_s,
        )

    def cancel(self) -> None:
        """Stop the engine within one token; run() still saves what was produced (a
        save waiting for the database is tried again at once)."""
        self.handle.cancel()
        self.nudge()

    def nudge(self) -> None:
        """Cut a pause between save tries short: someone waits for this reply."""
        self._retries.nudge()

    def give_up_saving(self) -> None:
        """Shutdown: one more try of a pending save (the quick ones when the database is
        only busy), then leave the reply to recovery (its checkpointed text) instead of
        retrying for `save_retry_s`."""
        self._retries.last_try()

    async def saved(self, timeout_s: float) -> bool:
        """Nudge a pending save and wait (at most `timeout_s`) until the reply is done
        with; whether it is."""
        self.nudge()
        try:
            await asyncio.wait_for(asyncio.shield(self.done.wait()), timeout_s)
        except TimeoutError:
            return False
        return True

    async def run(self) -> ChatEvent:
        """Consume the engine's events to the end, save the reply, emit (and return) the
        terminal event."""
        pieces: list[str] = []
        result: GenerationResult | None = None
        error: BaseException | None = None
        try:
            async for event in self.handle.events():
                if isinstance(event, QueuePosition):
                    self._queued(event.position, event.loading)
                elif isinstance(event, TextPiece):
                    first = not pieces
                    self._queued(0)
                    self._piece(pieces, event.text)
                    if first:
                        # After the first piece is published: its watchers' wake-ups
                        # are queued on the loop ahead of this write's first step.
                        self._started = announce_started(self)
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
        result = self._agree(pieces, result)
        failed = await self._checkpoints.settle()
        if isinstance(failed, DatabaseUnavailableError):
            # The database just failed it (after up to LLAMAQL_DB_TIMEOUT_SECONDS):
            # the subscriber hears now, not after a second wait for the save.
            self._tell_kept(failed)
        if self._started is not None:
            await asyncio.wait([self._started])  # ReplyStarted commits before ReplyFinished
        terminal = await self._save_until_stored(pieces, result, error)
        self._tell(terminal)
        return terminal

    def _piece(self, pieces: list[str], text: str) -> None:
        if text:
            pieces.append(text)
            self.feed.publish(Delta(self.assistant_message_id, text))
            self._checkpoints.maybe(pieces)

    def _agree(self, pieces: list[str], result: GenerationResult | None) -> GenerationResult | None:
        """The result's text as the pieces published: a tail the engine held back (none
        today) is published, a text that does not extend them is replaced by them."""
        if result is None:
            return None
        streamed = "".join(pieces)
        if result.text.startswith(streamed):
            self._piece(pieces, result.text[len(streamed) :])
            return result
        logger.warning(
            "reply %s: the engine's final text differs from its pieces; the pieces are saved",
            self.assistant_message_id,
        )
        return replace(result, text=streamed)

    def _tell(self, terminal: ChatEvent) -> None:
        """Send the watchers the one terminal event (later ones are not sent)."""
        if self._told is None:
            self._told = terminal
            self.feed.publish(terminal)
            self.told.set()

    async def _save_until_stored(
        self, pieces: list[str], result: GenerationResult | None, error: BaseException | None
    ) -> ChatEvent:
        """Save the reply. A database that refuses for now (a retryable DomainError) is
        retried with backoff for up to `save_retry_s`, the subscriber told at once when
        it is unreachable; any other failure is retried `save_retry_pauses` times, then
        the reply is stored FAILED in a fresh unit of work."""
        unexpected = 0
        for attempt in itertools.count(1):
            try:
                return await self._save(pieces, result, error)
            except Exception as exc:
                if isinstance(exc, DomainError) and exc.retryable:
                    self._keep(exc, attempt)
                    unreachable = isinstance(exc, DatabaseUnavailableError)
                    if self._retries.over(attempt, unreachable=unreachable):
                        return self._abandon(exc, attempt)
                else:
                    unexpected += 1
                    if unexpected > len(self.save_retry_pauses):
                        logger.exception("saving reply %s failed", self.assistant_message_id)
                        return await self._mark_failed(pieces, result, error)
                    logger.warning(
                        "saving reply %s failed (try %d): %r",
                        self.assistant_message_id,
                        attempt,
                        exc,
                    )
            await self._retries.pause(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _keep(self, exc: DomainError, attempt: int) -> None:
        """A try failed because the database refused for now: keep the reply, and tell
        the subscriber once (at once when unreachable; when busy, after the quick tries)."""
        logger.warning(
            "saving reply %s failed (try %d, %s): kept in memory, retrying",
            self.assistant_message_id,
            attempt,
            exc.code,
        )
        if isinstance(exc, DatabaseUnavailableError) or attempt > len(self.save_retry_pauses):
            self._tell_kept(exc)

    def _tell_kept(self, exc: DomainError) -> None:
        if self._told is None:
            self.saving = True
            self._tell(Failed(exc.code, KEPT, True))

    def _abandon(self, exc: DomainError, attempt: int) -> ChatEvent:
        logger.error(
            "reply %s not saved after %d tries; its row is left to recovery "
            "(FAILED/interrupted, with its last checkpoint)",
            self.assistant_message_id,
            attempt,
        )
        self._tell_kept(exc)
        assert self._told is not None
        return self._told

    async def _mark_failed(
        self, pieces: list[str], result: GenerationResult | None, error: BaseException | None
    ) -> ChatEvent:
        """Store the reply FAILED with its text, so the conversation is not left
        GENERATING (busy) until a restart."""
        text = result.text if result is not None else "".join(pieces)
        try:
            await self._save([text], None, error)
        except Exception:
            logger.exception("could not even mark reply %s failed", self.assistant_message_id)
        return Failed("INTERNAL", "the reply could not be saved; try again", True)

    def _queued(self, position: int, loading: bool = False) -> None:
        # The first event is always Queued; later ones only when the position or the
        # model's loading changes.
        if (position, loading) != self._position:
            self._position = (position, loading)
            self.feed.publish(
                Queued(self.user_message, self.assistant_message_id, position, loading)
            )

    async def _save(
        self, pieces: list[str], result: GenerationResult | None, error: BaseException | None
    ) -> ChatEvent:
        return await store_reply(self, self.replica_id, pieces, result, error)
