"""Replicas sharing one database: who owns a reply, who is alive, cancels across them.

A reply records the replica generating it and a heartbeat (`MessageRepository.add`,
`beat`). `ports.ReplicaLink` is how this process reaches the others: on SQLite one process
is the model (`SingleProcess`: nothing to reach, and every GENERATING reply found at
start-up was left by a crash); on PostgreSQL `persistence.replica_link.PgReplicaLink`
carries cancels over LISTEN/NOTIFY. At start-up `recover_interrupted` fails the replies
a crash left GENERATING; `Heartbeat` keeps alive the replies this replica still holds
and marks the others once they stop being beaten, so no conversation is busy forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Collection, Sequence

from llamaql.ports.events import EventKind, ReplyRef, UsersWoken
from llamaql.ports.replicas import (
    CancelHandler,
    ReplicaLink,
    ReplyNotice,
    ReplyNoticeHandler,
    StopNotice,
)
from llamaql.ports.repositories import UnitOfWork, UnitOfWorkFactory
from llamaql.ports.values import MessageStatus

logger = logging.getLogger(__name__)


CANCEL_POLL_S = 0.1  # how often a cancelling replica looks whether the reply stopped
CANCEL_RESEND_S = 2.0  # a notice sent while the owner's listener reconnected is lost


class SingleProcess:
    """The link of a process that is the only server of its database (SQLite)."""

    shared = False

    def __init__(self, replica_id: str) -> None:
        self.replica_id = replica_id

    def on_cancel(self, handler: CancelHandler) -> None:
        """Nothing arrives: every reply of the database is this process's own."""

    def on_events(self, handler: UsersWoken) -> None:
        """Nothing arrives: this process's commits ring the in-process bell."""

    async def ask_cancel(self, notice: StopNotice) -> None:
        """No one else to ask."""

    def on_reply_notice(self, handler: ReplyNoticeHandler) -> None:
        """Nothing arrives: every reply is watched where it is generated."""

    async def send_reply_notice(self, notice: ReplyNotice) -> None:
        """No one else to tell."""

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to close."""


async def cancel_elsewhere(
    uow_factory: UnitOfWorkFactory,
    link: ReplicaLink,
    *,
    user_id: uuid.UUID,
    message_id: uuid.UUID,
    wait_s: float,
) -> None:
    """Ask the replica generating a reply to cancel it, and wait (at most `wait_s`) until
    it is no longer GENERATING, i.e. its owner saved it, or recovery marked it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    resend_at = loop.time()
    while loop.time() < deadline:
        if loop.time() >= resend_at:
            await link.ask_cancel(StopNotice(user_id, message_id=message_id))
            resend_at = loop.time() + CANCEL_RESEND_S
        await asyncio.sleep(CANCEL_POLL_S)
        async with uow_factory() as uow:
            message = await uow.messages.get(user_id=user_id, message_id=message_id)
        if message is None or message.status != MessageStatus.GENERATING.value:
            return
    logger.warning("reply %s still generating %.0fs after a cancel notice", message_id, wait_s)


async def recover_interrupted(
    uow_factory: UnitOfWorkFactory, link: ReplicaLink, *, dead_after_s: float
) -> int:
    """At start-up: replies left GENERATING by a crash become FAILED/interrupted.
    Alone on the database, that is every GENERATING reply; among replicas, only
    those whose replica stopped beating (or this replica's, from an earlier life)."""
    async with uow_factory() as uow:
        if link.shared:
            replies = await uow.messages.mark_interrupted(
                dead_after_s=dead_after_s, replica_id=link.replica_id
            )
        else:
            replies = await uow.messages.mark_interrupted()
        record_failed(uow, replies)
        await uow.commit()
    marked = len(replies)
    if marked:
        logger.warning("marked %d interrupted replies as FAILED", marked)
    return marked


def record_failed(uow: UnitOfWork, replies: Sequence[ReplyRef]) -> None:
    """The live feed hears of replies marked FAILED/interrupted (in the marking's
    transaction)."""
    for reply in replies:
        uow.events.record(
            user_id=reply.user_id,
            conversation_id=reply.conversation_id,
            kind=EventKind.REPLY_FINISHED,
            message_id=reply.message_id,
            status=MessageStatus.FAILED,
        )


OwnedReplies = Callable[[], Collection[uuid.UUID]]
"""The replies this process still generates or still tries to save."""


class Heartbeat:
    """Every `every_s`: the replies this replica still holds in memory (`owned`) are
    alive; replies whose heartbeat is older than `dead_after_s` become
    FAILED/interrupted, whether their replica stopped or this one let go of them (a save
    given up while the database was away). A failed beat is logged and retried at the
    next one."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        replica_id: str,
        every_s: float,
        dead_after_s: float,
        owned: OwnedReplies,
    ) -> None:
        self._uow_factory = uow_factory
        self._owned = owned
        self._replica_id = replica_id
        self._every_s = every_s
        self._dead_after_s = dead_after_s
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> int:
        """One beat and one sweep; returns how many replies of stopped replicas it marked."""
        owned = list(self._owned())
        if owned:
            async with self._uow_factory() as uow:
                await uow.messages.beat(replica_id=self._replica_id, message_ids=owned)
                await uow.commit()
        async with self._uow_factory() as uow:
            replies = await uow.messages.mark_interrupted(dead_after_s=self._dead_after_s)
            record_failed(uow, replies)
            await uow.commit()
        marked = len(replies)
        if marked:
            logger.warning(
                "marked %d replies of stopped replicas as FAILED/interrupted (no heartbeat "
                "for %gs)",
                marked,
                self._dead_after_s,
            )
        return marked

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="replica-heartbeat")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.beat()
            except Exception as exc:
                logger.warning("replica heartbeat failed (retried in %gs): %s", self._every_s, exc)
