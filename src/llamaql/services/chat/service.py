"""The chat use cases: send a message and stream the reply, cancel a reply, recover.

ChatService is a singleton. It holds no database session: each step opens its own
short unit of work. A send reads top to bottom: checks and prompt
(`starting.ReplyStarter`), then `submitting.ExchangeSubmitter` stores the exchange,
submits it and sees the reply saved (`generation.Generation`, its events on a
`reply_feed.ReplyFeed` that any number of streams watch); this process's live replies
are in `live_replies.LiveReplies`, `reply_cancels.ReplyCancels` stops one here or on the
replica generating it, and `reply_watch.ReplyWatch` follows one for replyStream.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from llamaql.config import ChatConfig
from llamaql.ports.engine import Engine
from llamaql.ports.errors import (
    ConversationBusyError,
    DomainError,
    NotFoundError,
)
from llamaql.ports.replicas import ReplicaLink
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import Conversation
from llamaql.services.branching import (
    FindTurn,
    choose_branch,
    edit_turn,
    regenerate_turn,
    send_turn,
)
from llamaql.services.chat.events import ChatEvent, Failed
from llamaql.services.chat.live_replies import LiveReplies
from llamaql.services.chat.reply_cancels import ReplyCancels
from llamaql.services.chat.reply_limit import ReplyLimit
from llamaql.services.chat.reply_relay import ReplyRelay
from llamaql.services.chat.reply_watch import ReplyWatch
from llamaql.services.chat.save_retries import SAVE_RETRY_PAUSES_S
from llamaql.services.chat.starting import ReplyStarter
from llamaql.services.chat.submitting import ExchangeSubmitter, ReplyObserver
from llamaql.services.chat.titles import TITLE_QUIET_S, Titler
from llamaql.services.replicas import recover_interrupted

logger = logging.getLogger(__name__)


class ChatService:
    """Send messages to the engine and keep both sides of every exchange.

    Besides its own settings it is given the link to other replicas (`SingleProcess`
    alone) and three facts of other components: how many replies one user may have live
    (`Config.live_replies_per_user`), after how long a silent replica's replies count as
    dead, and the database timeout (the longest wait for a reply's save)."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        engine: Engine,
        config: ChatConfig,
        *,
        replicas: ReplicaLink,
        live_replies_per_user: int,
        dead_after_s: float,
        db_timeout_s: float,
        save_retry_pauses: tuple[float, ...] = SAVE_RETRY_PAUSES_S,
    ) -> None:
        self._uow_factory = uow_factory
        self._replicas = replicas
        self._engine = engine
        self._dead_after_s = dead_after_s
        self._live = LiveReplies()
        self._titles = Titler(
            uow_factory,
            engine,
            enabled=config.auto_title,
            quiet=lambda: self._live.wait_quiet(TITLE_QUIET_S),
        )
        self._cancels = ReplyCancels(uow_factory, self._live, self._replicas)
        # Among replicas a reply counts while its replica beats (the sweep's rule); alone,
        # start-up recovery already failed every reply an earlier life left GENERATING.
        alive_within_s = dead_after_s if self._replicas.shared else None
        self._reply_limit = ReplyLimit(live_replies_per_user, alive_within_s)
        self._replicas.on_cancel(self._cancels.on_notice)
        self._relay = ReplyRelay(self._live, self._replicas)
        self._watch = ReplyWatch(uow_factory, self._live, self._replicas)
        self._replicas.on_reply_notice(self._relay.on_notice)
        self._replicas.on_reply_notice(self._watch.on_notice)
        self._submitter = ExchangeSubmitter(
            uow_factory,
            engine,
            live=self._live,
            titles=self._titles,
            replica_id=self._replicas.replica_id,
            checkpoint_every_s=config.checkpoint_seconds,
            save_retry_pauses=save_retry_pauses,
            reply_limit=self._reply_limit,
            save_retry_s=config.save_retry_seconds,
        )
        self._starter = ReplyStarter(
            uow_factory,
            engine,
            config,
            live=self._live,
            reply_limit=self._reply_limit,
            submitter=self._submitter,
            db_timeout_s=db_timeout_s,
        )

    def send(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        text: str,
        options: Mapping[str, Any] | None = None,
        cancel_on_close: bool = False,
    ) -> AsyncGenerator[ChatEvent, None]:
        """Stream Queued, Delta*, then Completed or Failed; a refusal is one Failed.
        Closing the stream leaves the reply running, unless `cancel_on_close`."""
        turn = send_turn(user_id=user_id, conversation_id=conversation_id, text=text)
        return self._events(user_id, turn, text, options, cancel_on_close)

    def edit(
        self,
        *,
        user_id: uuid.UUID,
        message_id: uuid.UUID,
        text: str,
        options: Mapping[str, Any] | None = None,
        cancel_on_close: bool = False,
    ) -> AsyncGenerator[ChatEvent, None]:
        """Like send, with a new user message beside user message `message_id` (same
        parent) and a reply to it; that branch becomes current."""
        turn = edit_turn(user_id=user_id, message_id=message_id, text=text)
        return self._events(user_id, turn, text, options, cancel_on_close)

    def regenerate(
        self,
        *,
        user_id: uuid.UUID,
        message_id: uuid.UUID,
        options: Mapping[str, Any] | None = None,
        cancel_on_close: bool = False,
    ) -> AsyncGenerator[ChatEvent, None]:
        """Like send, with a new reply beside assistant message `message_id` (to the same
        user message, which Queued carries); that branch becomes current."""
        turn = regenerate_turn(user_id=user_id, message_id=message_id)
        return self._events(user_id, turn, None, options, cancel_on_close)

    async def _events(
        self,
        user_id: uuid.UUID,
        find_turn: FindTurn,
        text: str | None,
        options: Mapping[str, Any] | None,
        cancel_on_close: bool,
    ) -> AsyncGenerator[ChatEvent, None]:
        self._live.stream_opened()
        try:
            # aclosing: a client leaving closes this generator, and the inner one with it
            # at once (its finally leaves the feed), not whenever it is collected.
            stream = self._stream(user_id, find_turn, text, options, cancel_on_close)
            async with aclosing(stream) as events:
                async for event in events:
                    yield event
        finally:
            self._live.stream_closed()

    async def _stream(
        self,
        user_id: uuid.UUID,
        find_turn: FindTurn,
        text: str | None,
        options: Mapping[str, Any] | None,
        cancel_on_close: bool,
    ) -> AsyncGenerator[ChatEvent, None]:
        self._engine.expect_reply()  # before the database work: titles step aside now
        try:
            generation = await self._starter.start(
                user_id, find_turn, text, options or {}, cancel_on_close
            )
        except DomainError as exc:
            logger.info("chat request refused (%s): %s", exc.code, exc.message)
            yield Failed(exc.code, exc.message, exc.retryable)
            return
        watcher = generation.sender or generation.feed.watch(0, queued=True)
        try:
            async for event in watcher.events():
                yield event
        finally:
            # The client went away (CancelledError at the await, GeneratorExit at the
            # yield) or the stream ended. The reply runs on (its finisher saves it)
            # unless the client asked for it to stop with its stream.
            watcher.close()
            if cancel_on_close and not generation.told.is_set():
                generation.cancel()

    def watch(
        self, *, user_id: uuid.UUID, message_id: uuid.UUID, after: int = 0
    ) -> AsyncGenerator[ChatEvent, None]:
        """replyStream: the owner's reply `message_id` from character `after` (one Delta),
        then its live deltas, then its terminal event; here or on any replica. Closing
        it never affects the reply. A refusal (another user's or an unknown message, a
        user message, `after` out of range) is one Failed."""
        return self._watch.watch(user_id=user_id, message_id=message_id, after=after)

    def on_reply_end(self, observer: ReplyObserver) -> None:
        """Call `observer` with each reply's final event (the metrics count it there)."""
        self._submitter.on_reply_end(observer)

    async def select_branch(self, *, user_id: uuid.UUID, message_id: uuid.UUID) -> Conversation:
        """Make the branch through `message_id` (to its newest leaf) current.

        NotFoundError for another user's or an unknown message; ConversationBusyError
        while a reply in the conversation is starting or generating."""
        async with self._uow_factory() as uow:
            message = await uow.messages.get(user_id=user_id, message_id=message_id)
        if message is None:
            raise NotFoundError(f"message {message_id} not found")
        # Claimed like a send: a send starting in this process meanwhile sees it busy.
        if not self._live.claim(message.conversation_id):
            raise ConversationBusyError()
        try:
            async with self._uow_factory() as uow:
                conversation = await choose_branch(uow, user_id=user_id, message_id=message_id)
                await uow.commit()
        finally:
            self._live.unclaim(message.conversation_id)
        return conversation

    async def cancel(self, *, user_id: uuid.UUID, message_id: uuid.UUID) -> bool:
        """Cancel the owner's reply in progress and wait until it is saved.

        True when a generation was cancelled (here, or by the replica generating it),
        False when the message is not generating; NotFoundError when the message does
        not exist or is another user's.
        """
        return await self._cancels.cancel(user_id=user_id, message_id=message_id)

    def owned_replies(self) -> list[uuid.UUID]:
        """The replies this process still generates or still tries to save (what its
        heartbeat keeps alive)."""
        return self._live.owned()

    def stop_replies(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        """The conversation was deleted: stop its reply in progress, here or on another
        replica (the save then finds nothing and the stream ends NOT_FOUND)."""
        self._cancels.stop_conversation(user_id, conversation_id)

    async def recover_interrupted(self) -> int:
        """At start-up: replies left GENERATING by a crash become FAILED/interrupted
        (among replicas, only those of replicas that stopped beating)."""
        return await recover_interrupted(
            self._uow_factory,
            self._replicas,
            dead_after_s=self._dead_after_s,
        )

    async def drain(self, timeout_s: float) -> None:
        """Before the server closes its sockets: end every live reply (shutdown) and wait
        until each stream has handed its terminal event to the client."""
        await self.shutdown()
        await self._live.wait_streams_closed(timeout_s)

    async def shutdown(self) -> None:
        """Refuse new messages, cancel live replies and wait until their text is saved."""
        await self._live.close()
        await self._titles.shutdown()
