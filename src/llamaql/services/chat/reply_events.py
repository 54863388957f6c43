"""A reply's events in the live feed: ReplyStarted at its first token, ReplyFinished with
its final save.

Nothing else changes in the database at the first token, so ReplyStarted has a small
transaction of its own, in a task off the stream's path. The reply's final save waits
for that task (Generation's `_started`), so ReplyStarted always commits before
ReplyFinished; a failure to write it is only logged: ReplyFinished still tells the end.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Protocol

from llamaql.ports.events import EventKind
from llamaql.ports.repositories import UnitOfWork, UnitOfWorkFactory
from llamaql.ports.values import MessageStatus

logger = logging.getLogger(__name__)
# Loop passes the ReplyStarted write waits before it starts. The first pieces of a
# burst's replies reach the loop together; each reply's own frame is queued ahead of its
# write, but the other replies' frames would wait behind the writes queued before them
# (a unit of work's first step is 1-2 ms of loop CPU): in a burst of 8 on two cores the
# last first frame left 22-60 ms after the last first token was sampled, 7-19 ms with
# the writes two passes later (a piece's frame takes two: the feed's waiter, its send).
FRAMES_FIRST_PASSES = 2


class LiveReply(Protocol):
    @property
    def uow_factory(self) -> UnitOfWorkFactory: ...
    @property
    def user_id(self) -> uuid.UUID: ...
    @property
    def conversation_id(self) -> uuid.UUID: ...
    @property
    def assistant_message_id(self) -> uuid.UUID: ...


def announce_started(reply: LiveReply) -> asyncio.Task[None]:
    """Write the reply's REPLY_STARTED event in a task; the caller awaits it before the
    reply's final save."""
    return asyncio.create_task(_write(reply), name=f"started-{reply.assistant_message_id}")


def record_finished(uow: UnitOfWork, reply: LiveReply, status: MessageStatus) -> None:
    """REPLY_FINISHED with the stored status, in the final save's unit of work."""
    uow.events.record(
        user_id=reply.user_id,
        conversation_id=reply.conversation_id,
        kind=EventKind.REPLY_FINISHED,
        message_id=reply.assistant_message_id,
        status=status,
    )


async def _write(reply: LiveReply) -> None:
    for _ in range(FRAMES_FIRST_PASSES):
        await asyncio.sleep(0)
    try:
        async with reply.uow_factory() as uow:
            uow.events.record(
                user_id=reply.user_id,
                conversation_id=reply.conversation_id,
                kind=EventKind.REPLY_STARTED,
                message_id=reply.assistant_message_id,
            )
            await uow.commit()
    except Exception as exc:
        logger.warning("ReplyStarted of %s not written: %s", reply.assistant_message_id, exc)
