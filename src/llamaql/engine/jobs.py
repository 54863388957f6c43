"""One request's life: its cancel flag and the thread-safe hand-off of its events.

Text is coalesced on the way to the event loop: the scheduler thread appends each piece
to a buffer, and the loop flushes the buffer as one `TextPiece` at once for the first
piece, then at most once per `stream_interval` seconds. A fast model therefore costs one
loop wake-up and one WebSocket frame per interval, not per token. A slow stream (fewer
than two pieces per interval, as when many replies share a small CPU) waits for a second
piece or for twice the interval, so there a frame seldom carries a single token: frames
cost CPU that llama.cpp's threads would otherwise use.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from llamaql.ports.engine import (
    EngineError,
    EngineEvent,
    GenerationResult,
    PreparedPrompt,
    QueuePosition,
    Requester,
    TextPiece,
)

logger = logging.getLogger(__name__)
# uvloop's `time()` and timers tick in whole milliseconds (a delay is truncated): a timer
# due in under a millisecond fires in the next loop pass with the clock unchanged, so a
# deadline that close counts as reached, or the loop spins on it until the clock ticks
# (about a thousand passes per frame, measured).
_CLOCK_TICK_S = 0.001


@dataclass(frozen=True, slots=True)
class _Failed:
    error: EngineError


class Job:
    """A submitted request; implements GenerationHandle.

    Events are produced on the scheduler thread (or wherever cancel() is called) and
    consumed on the event loop that submitted the request, through
    `loop.call_soon_threadsafe` into an asyncio.Queue owned by that loop.
    """

    def __init__(
        self,
        prompt: PreparedPrompt,
        requester: Requester,
        loop: asyncio.AbstractEventLoop,
        *,
        stream_interval: float = 0.0,
        background: bool = False,
        home: int | None = None,
    ) -> None:
        self.prompt = prompt
        self.requester = requester
        self.background = background
        # The decode lane whose idle sequence held this conversation's KV when it was
        # submitted (admission.py); None: any lane.
        self.home = home
        self._loop = loop
        self._interval = stream_interval
        self._events: asyncio.Queue[EngineEvent | _Failed] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._finished = threading.Event()
        self._last_position: int | None = None
        self._lock = threading.Lock()
        self._pending: list[str] = []  # text not yet handed to the loop
        self._flush_scheduled = False
        self._last_flush = float("-inf")  # loop time of the latest text frame
        # Set by the queue: takes a cancelled job out of the queue if it is still there.
        self.cancel_hook: Callable[[Job], None] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def cancel(self) -> None:
        """Stop within one decode step, or before starting; idempotent and thread-safe."""
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

    def post_text(self, text: str) -> None:
        """Add reply text; the loop receives it coalesced (see the module docstring).
        A background request is read by its result alone: a preempted one starts over,
        and its text would arrive twice."""
        if not text or self.finished or self.background:
            return
        with self._lock:
            self._pending.append(text)
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self._call_on_loop(self._schedule_flush)

    def finish(self, result: GenerationResult) -> None:
        self._end(result)

    def fail(self, error: EngineError) -> None:
        self._end(_Failed(error))

    def _end(self, item: GenerationResult | _Failed) -> None:
        with self._lock:
            if self._finished.is_set():
                return
            self._finished.set()
            text, self._pending = "".join(self._pending), []
        # Posted in this order, so the last text arrives before the end; a flush already
        # scheduled finds nothing left.
        if text:
            self._post(TextPiece(text))
        self._post(item)

    # Loop side.

    def _schedule_flush(self) -> None:
        """Flush once the interval has passed since the last frame and two pieces wait,
        or once twice the interval has passed; else come back when one of those is due."""
        since = self._loop.time() - self._last_flush
        with self._lock:
            waiting = len(self._pending)
        reached = since + _CLOCK_TICK_S
        if reached >= 2 * self._interval or (reached >= self._interval and waiting >= 2):
            self._flush()
        elif reached < self._interval:
            self._loop.call_later(self._interval - since, self._schedule_flush)
        else:
            self._loop.call_later(2 * self._interval - since, self._flush)

    def _flush(self) -> None:
        with self._lock:
            self._flush_scheduled = False
            text, self._pending = "".join(self._pending), []
        if text:
            self._last_flush = self._loop.time()
            self._events.put_nowait(TextPiece(text))

    def _post(self, item: EngineEvent | _Failed) -> None:
        self._call_on_loop(self._events.put_nowait, item)

    def _call_on_loop(self, callback: Callable[..., object], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            # The submitting loop is closed: no one can read this request's events.
            logger.debug("event loop closed; cancelling a request nobody can read")
            self._cancelled.set()
