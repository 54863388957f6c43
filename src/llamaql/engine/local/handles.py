"""The registry's generation handles: one that counts a reply on its model until it
ends, and one that waits for its model to load before it is submitted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from llamaql.ports.engine import (
    EngineEvent,
    GenerationHandle,
    GenerationResult,
    QueuePosition,
)


class TrackedHandle:
    """A submitted reply; `on_end` runs once when its events end (or it is dropped)."""

    def __init__(self, handle: GenerationHandle, on_end: Callable[[], None]) -> None:
        self._handle = handle
        self._on_end: Callable[[], None] | None = on_end

    async def events(self) -> AsyncIterator[EngineEvent]:
        try:
            async for event in self._handle.events():
                yield event
        finally:
            self.end()

    def cancel(self) -> None:
        self._handle.cancel()

    def end(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()


class LoadingHandle:
    """A reply whose model is not loaded yet: it reports `QueuePosition(1, loading=True)`,
    waits for `loaded` (which raises ModelUnavailableError when the load fails), then
    `submit`s and passes the real handle's events on (their first position says
    loading=False). Cancelled before that, it ends `cancelled` with no text."""

    def __init__(
        self,
        loaded: Awaitable[None],
        submit: Callable[[], GenerationHandle],
        on_end: Callable[[], None],
    ) -> None:
        self._loaded = asyncio.ensure_future(loaded)
        # A reply cancelled before its load ended never reads the outcome: read it here.
        self._loaded.add_done_callback(_read_outcome)
        self._submit = submit
        self._tracked = TrackedHandle(_Nothing(), on_end)
        self._inner: GenerationHandle | None = None
        self._cancelled = asyncio.Event()

    async def events(self) -> AsyncIterator[EngineEvent]:
        try:
            yield QueuePosition(1, loading=True)
            cancelled = asyncio.ensure_future(self._cancelled.wait())
            try:
                await asyncio.wait({self._loaded, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                cancelled.cancel()
            if self._cancelled.is_set():
                yield GenerationResult("", "cancelled")
                return
            self._loaded.result()  # raises the load's failure
            self._inner = self._submit()
            async for event in self._inner.events():
                yield event
        finally:
            self._tracked.end()

    def cancel(self) -> None:
        self._cancelled.set()
        if self._inner is not None:
            self._inner.cancel()


def _read_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class _Nothing:
    """A handle with no events (LoadingHandle's end bookkeeping reuses TrackedHandle)."""

    async def events(self) -> AsyncIterator[EngineEvent]:
        return
        yield

    def cancel(self) -> None:
        pass
