"""One reply as it streams: its events printed as they come, Ctrl-C turned into a cancel,
and a dropped connection turned into a new one that carries on where the text stopped.

A reply belongs to the server: closing its stream does not stop it. So Ctrl-C asks the
server to stop it (`cancelGeneration`, as soon as MessageQueued gave its id), and the
server keeps the text so far (status CANCELLED), printed like any other last word. A
connection lost mid-reply (the network, a proxy, a token that expired: 4403) is opened
again with backoff, with a fresh token when the server refused the old one, and the
reply followed with `replyStream(after: <characters printed>)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Protocol

from llamaql.client.api import ApiError
from llamaql.client.console import Console
from llamaql.client.operations import CANCEL, REPLY_STREAM
from llamaql.client.resume import Backoff


class EventStream(Protocol):
    """One open subscription (client/stream.py's Subscription)."""

    def events(self) -> AsyncIterator[dict[str, Any]]: ...

    async def complete(self) -> None: ...

    async def close(self) -> None: ...


class ReplyApi(Protocol):
    """What a reply needs over HTTP (client/api.py's GraphQLHttp)."""

    async def execute(self, document: str, **variables: Any) -> dict[str, Any]: ...

    async def renew_identity(self) -> bool: ...


# Opens a subscription: (document, field, variables) -> the stream, subscribed.
StreamOpener = Callable[[str, str, dict[str, Any]], Awaitable[EventStream]]


def describe_error(error: ApiError) -> str:
    return f"error {error.code}: {error.message}"


class LiveReply:
    """Prints one reply's ChatEvents; `interrupt()` is what Ctrl-C does. `reply_id` and
    `shown` start a reply that is already under way (its text so far printed)."""

    def __init__(
        self,
        *,
        api: ReplyApi,
        console: Console,
        open_stream: StreamOpener,
        reply_id: str | None = None,
        shown: str = "",
        backoff: Backoff | None = None,
    ) -> None:
        self._api = api
        self._console = console
        self._open = open_stream
        self.reply_id = reply_id
        self.text = shown  # the reply's text printed so far (what `after` counts)
        self._backoff = backoff or Backoff()
        self._stream: EventStream | None = None
        self._position: int | None = None
        self._loading = False
        self._cancelling = False
        self._dropped = False
        self._tasks: set[asyncio.Task[None]] = set()

    def interrupt(self) -> None:
        """First time: ask the server to stop the reply (its text so far is kept), at
        once or as soon as its id is known. Again: stop following it."""
        if self._cancelling:
            self._dropped = True
            if self._stream is not None:
                self._spawn(self._stream.complete())
        elif self.reply_id is not None:
            self._spawn(self._cancel(self.reply_id))
        self._cancelling = True

    async def run(
        self, document: str, field: str, variables: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Open the stream and follow the reply to its end; the stored reply (COMPLETE,
        CANCELLED, FAILED) or None. Refusals before anything was stored raise ApiError."""
        self._stream = await self._open(document, field, variables)
        try:
            if self._dropped:  # Ctrl-C twice while it was opening
                await self._stream.complete()
            return await self._follow()
        finally:
            if self._stream is not None:
                await self._stream.close()
            if self._tasks:
                await asyncio.gather(*self._tasks)

    async def _follow(self) -> dict[str, Any] | None:
        while self._stream is not None:
            try:
                async for event in self._stream.events():
                    self._backoff.reset()
                    outcome = self._show(event)
                    if outcome is not None:
                        return outcome or None
                break  # only an unsubscribe ends a stream before its terminal event
            except ApiError as exc:
                if self.reply_id is None or self._dropped or not await self._resumable(exc):
                    raise
            await self._reattach()
        self._console.line("[cancelled]" if self._cancelling else "[the stream ended early]")
        return None

    async def _resumable(self, error: ApiError) -> bool:
        """Whether to open a new connection after this error: a lost connection, or a
        refused token when a fresh one can be had."""
        if error.code == "UNREACHABLE":
            return True
        return error.code == "UNAUTHENTICATED" and await self._api.renew_identity()

    async def _reattach(self) -> None:
        """A new connection following the same reply from what was printed; the stream
        stays None when the user stopped following it meanwhile."""
        assert self._stream is not None
        assert self.reply_id is not None
        await self._stream.close()
        self._stream = None
        self._console.line("[connection lost: reconnecting…]")
        while not self._dropped:
            delay = self._backoff.next_delay()
            if delay is None:
                raise ApiError(
                    "UNREACHABLE",
                    "could not reconnect; the reply goes on on the server: "
                    "/switch to its conversation to see it",
                )
            await asyncio.sleep(delay)
            variables = {"messageId": self.reply_id, "after": len(self.text)}
            try:
                self._stream = await self._open(REPLY_STREAM, "replyStream", variables)
                return
            except ApiError as exc:
                if not await self._resumable(exc):
                    raise

    def _show(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Print one event; for a terminal one, the reply ({} when none was stored)."""
        kind = event.get("__typename")
        if kind == "MessageQueued":
            self._queued(event["assistantMessageId"])
            self._show_loading(bool(event.get("loading")))
            self._show_position(event["position"])
        elif kind == "TokenDelta":
            self._write(event["text"])
        elif kind == "MessageCompleted":
            message: dict[str, Any] = event["message"]
            self._write_rest(message)
            self._show_end(message)
            return message
        elif kind == "MessageFailed":
            failed: dict[str, Any] = event.get("assistantMessage") or {}
            self._write_rest(failed)
            retry = " (retry later)" if event.get("retryable") else ""
            self._console.line(f"error {event['code']}: {event['reason']}{retry}")
            return failed
        return None

    def _queued(self, reply_id: str) -> None:
        first = self.reply_id is None
        self.reply_id = reply_id
        if first and self._cancelling and not self._dropped:
            self._spawn(self._cancel(reply_id))  # Ctrl-C came before the id did

    def _write(self, text: str) -> None:
        self.text += text
        self._console.write(text)

    def _write_rest(self, message: dict[str, Any]) -> None:
        """What the stored text holds beyond what was printed (a reply that ended while
        the connection was down) is printed before its end."""
        stored = message.get("text") or ""
        if len(stored) > len(self.text) and stored.startswith(self.text):
            self._write(stored[len(self.text) :])

    def _show_position(self, position: int) -> None:
        if position > 0 and position != self._position:
            self._console.line(f"[waiting: number {position} in line for the model]")
        self._position = position

    def _show_loading(self, loading: bool) -> None:
        if loading and not self._loading:
            self._console.line("[loading model…]")
        self._loading = loading

    def _show_end(self, message: dict[str, Any]) -> None:
        """The reply's text is followed by the name of the model that wrote it, then how
        it ended when it did not simply stop."""
        if message.get("model"):
            self._console.write(f"  [{message['model']}]")
        if message["status"] == "CANCELLED":
            self._console.line("[cancelled]")
        elif message.get("finishReason") == "length":
            self._console.line("[stopped at the token limit]")
        else:
            self._console.end_line()

    async def _cancel(self, reply_id: str) -> None:
        try:
            await self._api.execute(CANCEL, id=reply_id)
        except ApiError as exc:
            self._console.line(describe_error(exc))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
