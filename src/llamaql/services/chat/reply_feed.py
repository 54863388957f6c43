"""One reply's events, for any number of watchers: the sender's stream and replyStreams.

A reply belongs to the server, not to a socket: its `Generation` publishes every event
here, and each watcher reads its own copy. `watch` takes the snapshot (the text from a
given character on) and subscribes in one synchronous step on the event loop, so a
watcher attaching mid-reply sees every later piece exactly once, with no gap.

The engine already coalesces text to one piece per LLAMAQL_STREAM_INTERVAL_MS, so each
watcher is sent at most that many frames. A watcher that reads more slowly than pieces
arrive (a slow socket) does not grow a queue: its unread pieces merge into one delta,
and an unread queue position is replaced by the newer one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from llamaql.ports.errors import BadInputError
from llamaql.services.chat.events import ChatEvent, Completed, Delta, Failed, Queued


class FeedWatcher:
    """One reader of a feed: its unread events, at most one delta between two others."""

    def __init__(self, feed: ReplyFeed) -> None:
        self._feed = feed
        self._pending: list[ChatEvent] = []
        self._ready = asyncio.Event()

    def push(self, event: ChatEvent) -> None:
        last = self._pending[-1] if self._pending else None
        if isinstance(event, Delta) and isinstance(last, Delta):
            self._pending[-1] = Delta(event.message_id, last.text + event.text)
        elif isinstance(event, Queued) and isinstance(last, Queued):
            self._pending[-1] = event
        else:
            self._pending.append(event)
        self._ready.set()

    @property
    def unread(self) -> int:
        """How many events wait to be read (coalesced)."""
        return len(self._pending)

    async def next(self) -> ChatEvent:
        """The next event (waits for one)."""
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        return self._pending.pop(0)

    async def events(self) -> AsyncIterator[ChatEvent]:
        """Every event up to and including the terminal one; unsubscribes when left."""
        try:
            while True:
                event = await self.next()
                yield event
                if isinstance(event, Completed | Failed):
                    return
        finally:
            self.close()

    def close(self) -> None:
        """Stop receiving (the reply goes on)."""
        self._feed.leave(self)


class ReplyFeed:
    """The events of reply `message_id` so far (its queue position, its text, its end)
    and the watchers that receive the ones to come."""

    def __init__(self, message_id: uuid.UUID) -> None:
        self.message_id = message_id
        self._parts: list[str] = []
        self._length = 0  # code points, i.e. str indices
        self._queued: Queued | None = None
        self._terminal: Completed | Failed | None = None
        self._watchers: set[FeedWatcher] = set()

    @property
    def text(self) -> str:
        """The reply's text so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def length(self) -> int:
        return self._length

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def publish(self, event: ChatEvent) -> None:
        """Record an event and hand it to every watcher (after the terminal one, none)."""
        if self._terminal is not None:
            return
        if isinstance(event, Queued):
            self._queued = event
        elif isinstance(event, Delta):
            if not event.text:
                return
            self._parts.append(event.text)
            self._length += len(event.text)
        else:
            self._terminal = event
        for watcher in self._watchers:
            watcher.push(event)
        if self._terminal is not None:
            self._watchers.clear()

    def watch(self, after: int = 0, *, queued: bool = False) -> FeedWatcher:
        """A watcher that first gets the queue position (always with `queued`, else only
        while no text exists yet), then the text from character `after` as one delta,
        then every later event. BadInputError when `after` is beyond the text so far."""
        if after < 0 or after > self._length:
            raise BadInputError(
                f"after must be between 0 and the reply's length so far ({self._length}), "
                f"got {after}"
            )
        watcher = FeedWatcher(self)
        if self._queued is not None and (queued or (not self._length and not self._terminal)):
            watcher.push(self._queued)
        rest = self.text[after:]
        if rest:
            watcher.push(Delta(self.message_id, rest))
        if self._terminal is not None:
            watcher.push(self._terminal)
        else:
            self._watchers.add(watcher)
        return watcher

    def leave(self, watcher: FeedWatcher) -> None:
        self._watchers.discard(watcher)
