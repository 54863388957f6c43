"""One request's life: its cancel flag and the thread-safe hand-off of its events."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from llamaql.engine.options import ResolvedOptions
from llamaql.engine.types import (
    EngineError,
    EngineEvent,
    GenerationResult,
    PreparedPrompt,
    QueuePosition,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Failed:
    error: EngineError


class Job:
    """A submitted request; implements GenerationHandle.

    Events are produced on the worker thread (or wherever cancel() is called) and
    consumed on the event loop that submitted the request: every event goes through
    `loop.call_soon_threadsafe` into an asyncio.Queue owned by that loop.
    """

    def __init__(
        self, prompt: PreparedPrompt, options: ResolvedOptions, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.prompt = prompt
        self.options = options
        self._loop = loop
        self._events: asyncio.Queue[EngineEvent | _Failed] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._finished = threading.Event()
        self._last_position: int | None = None
        # Set by the queue: takes a cancelled job out of the queue if it is still there.
        self.cancel_hook: Callable[[Job], None] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def cancel(self) -> None:
        """Stop within one token, or before starting; idempotent and thread-safe."""
        if self._cancelled.is_set() or self._finished.is_set():
            return
        self._cancelled.set()
        if self.cancel_hook is not None:
            self.cancel_hook(self)

    async def events(self) -> AsyncIterator[EngineEvent]:
        finished = False
        try:
            while True:
                event = await self._events.get()
                if isinstance(event, _Failed):
                    finished = True
                    raise event.error
                yield event
                if isinstance(event, GenerationResult):
                    finished = True
                    return
        finally:
            if not finished:
                # Nobody is listening any more (closed stream, cancelled task): free the model.
                self.cancel()

    # Producer side, called from any thread.

    def post_position(self, position: int) -> None:
        if position != self._last_position and not self.finished:
            self._last_position = position
            self._post(QueuePosition(position))

    def post(self, event: EngineEvent) -> None:
        if not self.finished:
            self._post(event)

    def finish(self, result: GenerationResult) -> None:
        if not self._finished.is_set():
            self._post(result)
            self._finished.set()

    def fail(self, error: EngineError) -> None:
        if not self._finished.is_set():
            self._post(_Failed(error))
            self._finished.set()

    def _post(self, item: EngineEvent | _Failed) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, item)
        except RuntimeError:
            # The submitting loop is closed: no one can read this request's events.
            logger.debug("event loop closed; cancelling a request nobody can read")
            self._cancelled.set()
