"""ReplyStarted: the live feed hears when a reply's first token arrives.

Nothing else changes in the database then, so the event has a small transaction of its
own, in a task off the stream's path. The reply's final save waits for it (Generation
awaits `started`), so ReplyStarted always commits before ReplyFinished, and a failure
to write it is only logged: ReplyFinished still tells the end.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Protocol

from llamaql.ports.events import EventKind
from llamaql.ports.repositories import UnitOfWorkFactory

logger = logging.getLogger(__name__)


class StartingReply(Protocol):
    @property
    def uow_factory(self) -> UnitOfWorkFactory: ...
    @property
    def user_id(self) -> uuid.UUID: ...
    @property
    def conversation_id(self) -> uuid.UUID: ...
    @property
    def assistant_message_id(self) -> uuid.UUID: ...


def announce_started(reply: StartingReply) -> asyncio.Task[None]:
    """Write the reply's REPLY_STARTED event in a task; the caller awaits it before the
    reply's final save."""
    return asyncio.create_task(_write(reply), name=f"started-{reply.assistant_message_id}")


async def _write(reply: StartingReply) -> None:
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
