"""The graphql-transport-ws protocol over one WebSocket: the one client of it that the
terminal client (`stream`), the tests and the benchmarks share.

It speaks the protocol and nothing more: `connection_init` and its `connection_ack`,
`subscribe`, `complete`, `ping`/`pong` (a server's ping is answered on the way), and
hands every other message to the caller as it arrives, unbuffered, so a caller can time
each one (the benchmarks) or route them by operation id. What a message means (an
error, a refusal) is the caller's to decide.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import websockets
from websockets.asyncio.client import ClientConnection

PROTOCOL = websockets.Subprotocol("graphql-transport-ws")
OPEN_TIMEOUT_S = 30.0
# websockets' own default keepalive interval, for a caller that keeps it.
KEEPALIVE_S: float | None = 20.0


class ProtocolError(Exception):
    """The server broke the protocol: a message that is not a JSON object."""


class NotAcknowledgedError(ProtocolError):
    """The server answered `connection_init` with something else than `connection_ack`."""


class GraphQLSocket:
    """One graphql-transport-ws connection: `async with GraphQLSocket(url) as socket`.

    `headers` go on the upgrade request; `init_payload` is the `connection_init`
    payload (omitted when None). `ping_interval` and `max_size` are websockets' (None:
    no keepalive, no size limit). A subclass may override `_connect` to reach the
    server another way (a proxy, an Origin header).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        init_payload: Mapping[str, Any] | None = None,
        open_timeout: float = OPEN_TIMEOUT_S,
        ping_interval: float | None = KEEPALIVE_S,
        max_size: int | None = 1024 * 1024,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.init_payload = init_payload
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.max_size = max_size
        self.connection: ClientConnection | None = None
        self._next_id = 0

    async def _connect(self) -> ClientConnection:
        return await websockets.connect(
            self.url,
            subprotocols=[PROTOCOL],
            additional_headers=self.headers or None,
            open_timeout=self.open_timeout,
            ping_interval=self.ping_interval,
            max_size=self.max_size,
        )

    async def open(self, *, ack_timeout: float | None = None) -> Self:
        """Connect and initialise: returns once the server sent `connection_ack`
        (within `ack_timeout` seconds, default `open_timeout`)."""
        self.connection = await self._connect()
        try:
            message: dict[str, Any] = {"type": "connection_init"}
            if self.init_payload is not None:
                message["payload"] = dict(self.init_payload)
            await self.send(message)
            async with asyncio.timeout(ack_timeout or self.open_timeout):
                ack = await self.receive()
            if ack.get("type") != "connection_ack":
                raise NotAcknowledgedError(f"{self.url} did not acknowledge the connection: {ack}")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def send(self, message: Mapping[str, Any]) -> None:
        """One protocol message, as JSON."""
        assert self.connection is not None, "open the socket first (async with)"
        await self.connection.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        """The next protocol message other than a ping (answered with a pong here)."""
        assert self.connection is not None, "open the socket first (async with)"
        while True:
            message = json.loads(await self.connection.recv())
            if not isinstance(message, dict):
                raise ProtocolError(f"{self.url} sent a message that is not an object")
            if message.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    def new_id(self) -> str:
        """An operation id unused on this socket: "1", "2", ..."""
        self._next_id += 1
        return str(self._next_id)

    async def subscribe(
        self, query: str, variables: Mapping[str, Any] | None = None, *, op_id: str | None = None
    ) -> str:
        """Start an operation; returns its id (`op_id`, or a new one)."""
        op_id = op_id or self.new_id()
        payload = {"query": query, "variables": dict(variables or {})}
        await self.send({"type": "subscribe", "id": op_id, "payload": payload})
        return op_id

    async def complete(self, op_id: str) -> None:
        """The client's `complete`: unsubscribe (the server cancels the operation)."""
        await self.send({"type": "complete", "id": op_id})

    async def ping(self) -> None:
        """A ping, answered by the server's pong (messages in between are dropped: call
        it with no operation running)."""
        await self.send({"type": "ping"})
        while (await self.receive()).get("type") != "pong":
            pass
