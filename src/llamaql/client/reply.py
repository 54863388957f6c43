"""One reply as it streams: its events printed as they come, Ctrl-C turned into a cancel.

The server keeps a cancelled reply's text (status CANCELLED), so cancelling is asking the
server to stop, then printing its last word like any other: `cancelGeneration` once the
reply has an id (MessageQueued carries it), or unsubscribing before that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from llamaql.client.api import ApiError, GraphQLHttp
from llamaql.client.console import Console
from llamaql.client.operations import CANCEL
from llamaql.client.stream import Subscription


def describe_error(error: ApiError) -> str:
    return f"error {error.code}: {error.message}"


class LiveReply:
    """Prints one subscription's ChatEvents; `interrupt()` is what Ctrl-C does."""

    def __init__(self, *, api: GraphQLHttp, console: Console, subscription: Subscription) -> None:
        self._api = api
        self._console = console
        self._subscription = subscription
        self.reply_id: str | None = None
        self._position: int | None = None
        self._loading = False
        self._cancelling = False
        self._tasks: set[asyncio.Task[None]] = set()

    def interrupt(self) -> None:
        """First time: ask the server to stop the reply (its text so far is kept).
        Again: stop waiting for the server's answer and drop the stream."""
        if self._cancelling or self.reply_id is None:
            self._spawn(self._subscription.complete())
        else:
            self._spawn(self._cancel(self.reply_id))
        self._cancelling = True

    async def run(self) -> dict[str, Any] | None:
        """Stream to the end; the stored reply (COMPLETE, CANCELLED, FAILED) or None."""
        try:
            async for event in self._subscription.events():
                outcome = self._show(event)
                if outcome is not None:
                    return outcome or None
            # Only an unsubscribe ends a stream before its terminal event.
            self._console.line("[cancelled]" if self._cancelling else "[the stream ended early]")
            return None
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks)

    def _show(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Print one event; for a terminal one, the reply ({} when none was stored)."""
        kind = event.get("__typename")
        if kind == "MessageQueued":
            self.reply_id = event["assistantMessageId"]
            self._show_loading(bool(event.get("loading")))
            self._show_position(event["position"])
        elif kind == "TokenDelta":
            self._console.write(event["text"])
        elif kind == "MessageCompleted":
            message: dict[str, Any] = event["message"]
            self._show_end(message)
            return message
        elif kind == "MessageFailed":
            retry = " (retry later)" if event.get("retryable") else ""
            self._console.line(f"error {event['code']}: {event['reason']}{retry}")
            failed: dict[str, Any] = event.get("assistantMessage") or {}
            return failed
        return None

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
