"""A live reply's checkpoints: its text so far written every LLAMAQL_CHECKPOINT_SECONDS,
in a task of its own (never on the stream's path, never two at once), so a crash keeps
most of it and other replicas' watchers can read it."""

from __future__ import annotations

import asyncio
import logging
import uuid

from llamaql.ports.repositories import UnitOfWorkFactory

logger = logging.getLogger(__name__)


class Checkpoints:
    """The checkpoint writes of reply `message_id` (`every_s` 0: none)."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        user_id: uuid.UUID,
        message_id: uuid.UUID,
        replica_id: str | None,
        every_s: float,
    ) -> None:
        self._uow_factory = uow_factory
        self._user_id = user_id
        self._message_id = message_id
        self._replica_id = replica_id
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None
        self._written_at = 0.0

    def maybe(self, pieces: list[str]) -> None:
        """Write the text so far if the interval has passed and no write is in flight."""
        if self._every_s <= 0 or self._task is not None:
            return
        now = asyncio.get_running_loop().time()
        if now - self._written_at < self._every_s:
            return
        self._written_at = now
        self._task = asyncio.create_task(self._write("".join(pieces)))
        self._task.add_done_callback(self._done)

    async def settle(self) -> BaseException | None:
        """Wait for the write in flight (it only writes while GENERATING); its failure."""
        task = self._task
        if task is None:
            return None
        await asyncio.wait([task])
        return None if task.cancelled() else task.exception()

    async def _write(self, text: str) -> None:
        async with self._uow_factory() as uow:
            await uow.messages.checkpoint(
                user_id=self._user_id,
                message_id=self._message_id,
                text=text,
                replica_id=self._replica_id,
            )
            await uow.commit()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if not task.cancelled() and task.exception() is not None:
            logger.warning("checkpoint of reply %s failed: %s", self._message_id, task.exception())
