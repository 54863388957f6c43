"""After admission: store the exchange, submit it, and see its reply saved and titled.

Storing and submitting (`exchange.store_exchange`) runs as its own task so a client
leaving cannot cut it in half; the reply is then tracked in `LiveReplies` and driven to
its end by a finisher task (`Generation.run`), which frees the conversation and asks
the model for a title when the exchange gave the conversation only a first-words one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from llamaql.ports.engine import Engine, PreparedPrompt
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import MessageStatus
from llamaql.services.branching import Turn
from llamaql.services.chat.events import ChatEvent, Completed, title_from
from llamaql.services.chat.exchange import store_exchange
from llamaql.services.chat.generation import Generation
from llamaql.services.chat.live_replies import LiveReplies
from llamaql.services.chat.reply_limit import ReplyLimit
from llamaql.services.chat.titles import Titler

ReplyObserver = Callable[[ChatEvent], None]


class ExchangeSubmitter:
    """Turn an admitted, claimed exchange into a live reply of this process."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        engine: Engine,
        *,
        live: LiveReplies,
        titles: Titler,
        replica_id: str,
        checkpoint_every_s: float,
        save_retry_pauses: tuple[float, ...],
        reply_limit: ReplyLimit | None = None,
        save_retry_s: float,
    ) -> None:
        self._uow_factory = uow_factory
        self._engine = engine
        self._live = live
        self._titles = titles
        self._replica_id = replica_id
        self._checkpoint_every_s = checkpoint_every_s
        self._save_retry_pauses = save_retry_pauses
        self._reply_limit = reply_limit
        self._save_retry_s = save_retry_s
        self._observers: list[ReplyObserver] = []

    def on_reply_end(self, observer: ReplyObserver) -> None:
        """Call `observer` with each reply's final event once it is saved (or given up):
        a reply is counted when it ends, whether or not a stream still watches it."""
        self._observers.append(observer)

    async def submit(
        self,
        *,
        user_id: uuid.UUID,
        turn: Turn,
        seen: int,
        prompt: PreparedPrompt,
        cancel_on_close: bool = False,
    ) -> Generation:
        """Store and submit the exchange whose conversation the caller claimed; the
        claim is released when this fails, and by the finisher otherwise."""
        # Storing the exchange and submitting it must not be cut in half by a client
        # leaving: it runs as its own task. The reply then runs on (it belongs to the
        # server), or is cancelled when the client asked to stop it with its stream.
        task = asyncio.create_task(self._store(user_id, turn, seen, prompt))
        self._live.keep(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_cancel_started if cancel_on_close else _leave_started)
            raise

    async def _store(
        self, user_id: uuid.UUID, turn: Turn, seen: int, prompt: PreparedPrompt
    ) -> Generation:
        conversation = turn.conversation
        try:
            async with self._uow_factory() as uow:
                stored = await store_exchange(
                    uow,
                    self._engine,
                    user_id=user_id,
                    turn=turn,
                    seen=seen,
                    prompt=prompt,
                    replica_id=self._replica_id,
                    reply_limit=self._reply_limit,
                )
                try:
                    await uow.commit()
                except BaseException:
                    stored.handle.cancel()
                    raise
        except BaseException:
            self._live.unclaim(conversation.id)
            raise
        generation = Generation(
            self._uow_factory,
            user_id,
            conversation.id,
            stored.user_message,
            stored.reply_id,
            stored.handle,
            fallback_title=title_from(turn.text) if conversation.title is None else None,
            save_retry_pauses=self._save_retry_pauses,
            save_retry_s=self._save_retry_s,
            checkpoint_every_s=self._checkpoint_every_s,
            replica_id=self._replica_id,
        )
        # The sender's watcher exists before the finisher runs: it sees every event as
        # it came, the first Queued included.
        generation.sender = generation.feed.watch(0, queued=True)
        self._live.track(generation, self._finish(generation))
        return generation

    async def _finish(self, generation: Generation) -> None:
        """Save the reply (Generation.run), free the conversation, then title it."""
        try:
            terminal = await generation.run()
        finally:
            self._live.finished(generation)
        for observer in self._observers:
            observer(terminal)
        reply = terminal.message if isinstance(terminal, Completed) else None
        if (
            generation.fallback_title
            and reply is not None
            and reply.status == MessageStatus.COMPLETE
        ):
            self._titles.schedule(
                user_id=generation.user_id,
                conversation_id=generation.conversation_id,
                fallback=generation.fallback_title,
                question=generation.user_message.text,
                answer=reply.text,
                model=reply.model,
            )


def _leave_started(submit: asyncio.Task[Generation]) -> None:
    """Done-callback: the client left while its exchange was stored; the reply runs on."""
    if not submit.cancelled() and submit.exception() is None:
        sender = submit.result().sender
        if sender is not None:
            sender.close()


def _cancel_started(submit: asyncio.Task[Generation]) -> None:
    """Done-callback: the client left while its exchange was stored; stop the reply."""
    if not submit.cancelled() and submit.exception() is None:
        generation = submit.result()
        generation.cancel()
        if generation.sender is not None:
            generation.sender.close()
