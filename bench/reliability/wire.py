"""A graphql-transport-ws connection carrying many operations at once (the bench's
WsSession runs one at a time), and HTTP helpers."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from types import TracebackType
from typing import Any, Self

import httpx
from websockets.exceptions import ConnectionClosed

from bench.client import (
    SEND_MESSAGE,
    StreamTiming,
    bench_socket,
    fold_message,
    graphql_http,
)
from llamaql.client.gqlws import GraphQLSocket

CREATE = "mutation($input: CreateConversationInput) { createConversation(input: $input) { id } }"


async def post(
    client: httpx.AsyncClient, url: str, user: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """The bench's GraphQL POST, but a non-2xx answer fails the figure too."""
    return await graphql_http(client, url, user, query, variables, check_status=True)


async def create_conversations(
    client: httpx.AsyncClient, url: str, user: str, count: int, **fields: Any
) -> list[str]:
    ids = []
    for _ in range(count):
        data = await post(client, url, user, CREATE, {"input": fields})
        ids.append(str(data["createConversation"]["id"]))
    return ids


class Mux:
    """One socket, identified as `user`, with a reader task routing messages by id."""

    def __init__(self, url: str, user: str, *, timeout_s: float = 600.0) -> None:
        self.url = url
        self.user = user
        self.timeout_s = timeout_s
        self._socket: GraphQLSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queues: dict[str, asyncio.Queue[dict[str, Any] | None]] = {}

    async def __aenter__(self) -> Self:
        self._socket = await bench_socket(self.url, self.user).open(ack_timeout=60)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._socket is not None:
            await self._socket.close()

    async def _read(self) -> None:
        assert self._socket is not None
        try:
            while True:
                message = await self._socket.receive()  # pings are answered there
                queue = self._queues.get(message.get("id", ""))
                if queue is not None:
                    queue.put_nowait(message)
        except ConnectionClosed:
            pass
        finally:
            for queue in self._queues.values():
                queue.put_nowait(None)  # the socket closed under the operation

    async def subscribe(
        self, query: str, variables: dict[str, Any]
    ) -> tuple[str, asyncio.Queue[dict[str, Any] | None]]:
        assert self._socket is not None, "use Mux as an async context manager"
        op_id = uuid.uuid4().hex
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._queues[op_id] = queue
        await self._socket.subscribe(query, variables, op_id=op_id)
        return op_id, queue

    async def operation(self, query: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
        """One operation to its end: every message it got, the last one its `complete`
        or `error`, or {"type": "closed"} when the socket closed under it."""
        op_id, queue = await self.subscribe(query, variables)
        received: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await queue.get()
                    received.append(message or {"type": "closed"})
                    if message is None or message.get("type") in ("complete", "error"):
                        return received
        finally:
            self._queues.pop(op_id, None)

    async def send_message(
        self, conversation_id: str, text: str, options: dict[str, Any] | None = None
    ) -> StreamTiming:
        """One sendMessage to its end; a closed socket is failed_code 'CLOSED'."""
        timing = StreamTiming(sent_at=time.perf_counter())
        variables = {"conversationId": conversation_id, "text": text, "options": options}
        op_id, queue = await self.subscribe(SEND_MESSAGE, variables)
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await queue.get()
                    now = time.perf_counter()
                    if message is None:
                        timing.failed_code = timing.failed_code or "CLOSED"
                        return timing
                    if fold_message(timing, message, now):
                        return timing
        finally:
            self._queues.pop(op_id, None)
