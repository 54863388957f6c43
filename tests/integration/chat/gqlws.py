"""A small graphql-transport-ws client for the chat tests (raw protocol, bounded waits)."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import websockets
from websockets.asyncio.client import ClientConnection

EVENT_TIMEOUT_S = 180.0
TERMINAL = frozenset({"MessageCompleted", "MessageFailed"})

EVENT_SELECTION = """{
    __typename
    ... on MessageQueued {
      userMessage { id text role status parentId } assistantMessageId position
    }
    ... on TokenDelta { messageId text }
    ... on MessageCompleted { message { ...Reply } }
    ... on MessageFailed { code reason retryable assistantMessage { ...Reply } }
  }"""
REPLY_FRAGMENT = """
fragment Reply on Message {
  id role status text finishReason parentId
  usage { promptTokens completionTokens }
}
"""
SEND = f"""
subscription Send($conversationId: ID!, $text: String!, $options: GenerationOptionsInput) {{
  sendMessage(conversationId: $conversationId, text: $text, options: $options) \
{EVENT_SELECTION}
}}
{REPLY_FRAGMENT}"""
REGENERATE = f"""
subscription Regenerate($messageId: ID!, $options: GenerationOptionsInput) {{
  regenerate(messageId: $messageId, options: $options) {EVENT_SELECTION}
}}
{REPLY_FRAGMENT}"""
EDIT = f"""
subscription Edit($messageId: ID!, $text: String!, $options: GenerationOptionsInput) {{
  editMessage(messageId: $messageId, text: $text, options: $options) {EVENT_SELECTION}
}}
{REPLY_FRAGMENT}"""


class Socket:
    """One graphql-transport-ws connection; events are kept per operation id."""

    def __init__(self, url: str, init_payload: Mapping[str, Any] | None) -> None:
        self.url = url
        self.init_payload = init_payload
        self.connection: ClientConnection | None = None
        self._pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._next_id = 0

    async def _connect(self) -> ClientConnection:
        """Open the socket; a subclass may reach the server another way (a proxy, TLS)."""
        return await websockets.connect(
            self.url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        )

    async def __aenter__(self) -> Self:
        self.connection = await self._connect()
        message: dict[str, Any] = {"type": "connection_init"}
        if self.init_payload is not None:
            message["payload"] = dict(self.init_payload)
        await self._send(message)
        ack = await self._recv()
        assert ack["type"] == "connection_ack", ack
        return self

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

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.connection is not None
        await self.connection.send(json.dumps(message))

    async def _recv(self) -> dict[str, Any]:
        assert self.connection is not None
        while True:
            raw = await asyncio.wait_for(self.connection.recv(), EVENT_TIMEOUT_S)
            message: dict[str, Any] = json.loads(raw)
            if message["type"] == "ping":
                await self._send({"type": "pong"})
                continue
            return message

    async def send_message(
        self, conversation_id: str, text: str, options: dict[str, Any] | None = None
    ) -> str:
        """Start a sendMessage subscription; returns its operation id."""
        variables = {"conversationId": conversation_id, "text": text, "options": options}
        return await self.subscribe(SEND, variables)

    async def regenerate(self, message_id: str, options: dict[str, Any] | None = None) -> str:
        """Start a regenerate subscription; returns its operation id."""
        return await self.subscribe(REGENERATE, {"messageId": message_id, "options": options})

    async def edit_message(
        self, message_id: str, text: str, options: dict[str, Any] | None = None
    ) -> str:
        """Start an editMessage subscription; returns its operation id."""
        variables = {"messageId": message_id, "text": text, "options": options}
        return await self.subscribe(EDIT, variables)

    async def subscribe(self, query: str, variables: dict[str, Any]) -> str:
        """Start a subscription with one root field; returns its operation id."""
        self._next_id += 1
        op_id = str(self._next_id)
        await self._send(
            {"type": "subscribe", "id": op_id, "payload": {"query": query, "variables": variables}}
        )
        return op_id

    async def complete(self, op_id: str) -> None:
        """The client's `complete`: unsubscribe (the server cancels the reply)."""
        await self._send({"type": "complete", "id": op_id})

    async def event(self, op_id: str) -> dict[str, Any]:
        """The operation's next ChatEvent (its one root field's data)."""
        while not self._pending[op_id]:
            message = await self._recv()
            self._pending[message.get("id", "")].append(message)
        message = self._pending[op_id].pop(0)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        [event] = message["payload"]["data"].values()
        assert isinstance(event, dict), message
        return event

    async def until(self, op_id: str, typename: str) -> list[dict[str, Any]]:
        """Events up to and including the first of this type (or a terminal one)."""
        events = [await self.event(op_id)]
        while events[-1]["__typename"] not in {typename, *TERMINAL}:
            events.append(await self.event(op_id))
        return events

    async def stream(self, op_id: str) -> list[dict[str, Any]]:
        """Every event up to the terminal one."""
        return await self.until(op_id, "MessageCompleted")
