"""Stopping a user's reply wherever it is generating.

cancelGeneration and a deleted conversation stop a reply of this process through its
live registry. On a shared database the reply may be another replica's: that one is
asked by a `StopNotice` (and, for cancelGeneration, awaited until the reply is saved),
and notices from any replica, this one included, arrive at `on_notice`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from llamaql.ports.errors import NotFoundError
from llamaql.ports.replicas import ReplicaLink, StopNotice
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import Message, MessageStatus
from llamaql.services.chat.live_replies import LiveReplies
from llamaql.services.replicas import cancel_elsewhere

logger = logging.getLogger(__name__)

CANCEL_WAIT_S = 30.0


class ReplyCancels:
    """Cancel replies here or on the replica generating them; answer stop notices."""

    def __init__(
        self, uow_factory: UnitOfWorkFactory, live: LiveReplies, replicas: ReplicaLink
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._replicas = replicas

    async def cancel(self, *, user_id: uuid.UUID, message_id: uuid.UUID) -> bool:
        """ChatService.cancel: cancel here, or ask the replica generating it, and wait."""
        generation = self._live.of_message(message_id)
        if generation is None or generation.user_id != user_id:
            async with self._uow_factory() as uow:
                message = await uow.messages.get(user_id=user_id, message_id=message_id)
            if message is None:
                raise NotFoundError(f"message {message_id} not found")
            if not self._generating_elsewhere(message):
                return False
            await cancel_elsewhere(
                self._uow_factory,
                self._replicas,
                user_id=user_id,
                message_id=message_id,
                wait_s=CANCEL_WAIT_S,
            )
            return True
        generation.cancel()
        # Until its stream has ended: saved, or kept while the database is away (a cancel
        # must not wait minutes for a database; the reply is stopped either way).
        try:
            await asyncio.wait_for(asyncio.shield(generation.told.wait()), CANCEL_WAIT_S)
        except TimeoutError:
            logger.warning("reply %s still saving after cancel", message_id)
        return True

    def stop_conversation(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        """Stop the conversation's reply in progress, here or (by a notice, sent in the
        background) on another replica."""
        generation = self._live.of_conversation(conversation_id)
        if generation is not None and generation.user_id == user_id:
            generation.cancel()
        elif self._replicas.shared:
            notice = StopNotice(user_id, conversation_id=conversation_id)
            self._live.keep(asyncio.create_task(self._send_notice(notice)))

    def on_notice(self, notice: StopNotice) -> None:
        """Another replica (or this one) asks for a reply to stop: stop it if it is ours."""
        if notice.message_id is not None:
            generation = self._live.of_message(notice.message_id)
        elif notice.conversation_id is not None:
            generation = self._live.of_conversation(notice.conversation_id)
        else:
            return
        if generation is not None and generation.user_id == notice.user_id:
            logger.info("reply %s cancelled by a notice", generation.assistant_message_id)
            generation.cancel()

    def _generating_elsewhere(self, message: Message) -> bool:
        return (
            self._replicas.shared
            and message.status == MessageStatus.GENERATING.value
            and message.replica_id != self._replicas.replica_id
        )

    async def _send_notice(self, notice: StopNotice) -> None:
        try:
            await self._replicas.ask_cancel(notice)
        except Exception as exc:  # the reply then runs to its end and finds nothing
            logger.warning("could not send %s: %s", notice, exc)
