"""This process's live replies: who is busy, what to cancel, what shutdown waits for.

The database's GENERATING status says a conversation is busy across replicas; this
registry says it within the process at once (a conversation is claimed before the first
await of a send), finds a reply by its message for cancelGeneration, keeps the finisher
tasks referenced, counts the streams still owed a terminal event, and names the replies
the heartbeat keeps alive (generating, or still trying to save).

"Quiet" (what the model's titles wait for) is: no sendMessage stream open and no reply
live in this process. Replies outlive their streams, so an open stream alone no longer
says the engine is wanted: a detached reply still generating is, and a replyStream
watcher (which asks nothing of the engine) is not.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from llamaql.services.chat.generation import Generation

logger = logging.getLogger(__name__)


class LiveReplies:
    """Claims, live generations by conversation and by message, and their tasks."""

    def __init__(self) -> None:
        self._by_conversation: dict[uuid.UUID, Generation | None] = {}  # None: claimed
        self._by_message: dict[uuid.UUID, Generation] = {}
        # Tasks referenced so they are not garbage-collected mid-flight.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._streams = 0  # sendMessage streams not yet past their terminal event
        self._quiet = asyncio.Event()  # set while no stream is open and no reply is live
        self._quiet.set()
        self._quiet_since = 0.0  # the event loop's time the last one ended
        self.closing = False

    def claim(self, conversation_id: uuid.UUID) -> bool:
        """Mark the conversation busy; False when it already is (in this process)."""
        if conversation_id in self._by_conversation:
            return False
        self._by_conversation[conversation_id] = None
        return True

    def unclaim(self, conversation_id: uuid.UUID) -> None:
        self._by_conversation.pop(conversation_id, None)

    def of_conversation(self, conversation_id: uuid.UUID) -> Generation | None:
        return self._by_conversation.get(conversation_id)

    def of_message(self, message_id: uuid.UUID) -> Generation | None:
        return self._by_message.get(message_id)

    def owned(self) -> list[uuid.UUID]:
        """The replies this process still generates or still tries to save: the only
        ones its heartbeat may keep alive."""
        return list(self._by_message)

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Reference a task until it ends; `settle` waits for every such task."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def track(self, generation: Generation, finisher: Coroutine[Any, Any, None]) -> None:
        """Register a submitted reply and run its finisher as a kept task; the finisher
        calls `finished` when the reply is saved."""
        self._by_conversation[generation.conversation_id] = generation
        self._by_message[generation.assistant_message_id] = generation
        self._quiet.clear()
        self.keep(asyncio.create_task(finisher, name=f"reply-{generation.assistant_message_id}"))
        if self.closing:
            generation.cancel()  # submitted while shutdown was cancelling the others
            generation.give_up_saving()

    def finished(self, generation: Generation) -> None:
        self._by_conversation.pop(generation.conversation_id, None)
        self._by_message.pop(generation.assistant_message_id, None)
        generation.done.set()
        self._maybe_quiet()

    async def close(self) -> None:
        """Refuse new replies, cancel the live ones and wait until they are saved."""
        self.closing = True
        for generation in list(self._by_message.values()):
            generation.cancel()
            # A save waiting for the database gets one more try, not minutes of them.
            generation.give_up_saving()
        await self.settle()

    async def settle(self) -> None:
        """Wait until no kept task is left (a submit in flight may start one more)."""
        while self._tasks:
            logger.info("waiting for %d replies to be saved", len(self._tasks))
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stream_opened(self) -> None:
        self._streams += 1
        self._quiet.clear()

    def stream_closed(self) -> None:
        self._streams -= 1
        self._maybe_quiet()

    def _maybe_quiet(self) -> None:
        if not self._streams and not self._by_message and not self._quiet.is_set():
            self._quiet_since = asyncio.get_running_loop().time()
            self._quiet.set()

    async def wait_quiet(self, seconds: float) -> None:
        """Until no stream has been open and no reply live for `seconds` in a row (what
        background work, the model's titles, waits for: a burst of sends right after
        another meets none of it, as a reply that arrives while it runs only waits for
        one step)."""
        loop = asyncio.get_running_loop()
        while True:
            await self._quiet.wait()
            left = self._quiet_since + seconds - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(left)

    async def wait_streams_closed(self, timeout_s: float) -> None:
        """Shutdown, once every reply is saved: until each stream has been handed its
        terminal event."""
        try:
            await asyncio.wait_for(self._quiet.wait(), timeout_s)
        except TimeoutError:
            logger.warning("%d streams still open at shutdown", self._streams)
