"""A real `llamaql serve` process on a free port, and clients that talk to it.

Integration and end-to-end chat tests go through the same doors a user does: HTTP
POSTs for queries and mutations, and a WebSocket speaking graphql-transport-ws for
sendMessage. Waits are bounded but generous: the test machines are small and shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from llamaql.settings import DEFAULT_MODEL_FILE

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_MODEL_PATH = REPO_ROOT / "models" / DEFAULT_MODEL_FILE
START_TIMEOUT_S = 180.0
EVENT_TIMEOUT_S = 180.0
TERMINAL = frozenset({"MessageCompleted", "MessageFailed"})

SEND = """
subscription Send($conversationId: ID!, $text: String!, $options: GenerationOptionsInput) {
  sendMessage(conversationId: $conversationId, text: $text, options: $options) {
    __typename
    ... on MessageQueued { userMessage { id text role status } assistantMessageId position }
    ... on TokenDelta { messageId text }
    ... on MessageCompleted { message { ...Reply } }
    ... on MessageFailed { code reason retryable assistantMessage { ...Reply } }
  }
}
fragment Reply on Message {
  id role status text finishReason
  usage { promptTokens completionTokens }
}
"""
MESSAGES = """
query Messages($id: ID!) {
  conversation(id: $id) {
    title
    messages(first: 100) { edges { node { id role status text finishReason } } }
  }
}
"""
# Greedy decoding of this prompt runs to max_tokens: a reply long enough to interrupt.
LONG_TEXT = "Count from 1 to 300, separated by commas."
LONG_OPTIONS: dict[str, Any] = {"temperature": 0.0, "maxTokens": 400}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """One `llamaql serve` child process."""

    database: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self) -> Self:
        env = {
            **os.environ,
            "LLAMAQL_DATABASE_URL": f"sqlite+aiosqlite:///{self.database}",
            "LLAMAQL_MODEL_PATH": str(DEFAULT_MODEL_PATH),
            "LLAMAQL_LOG_LEVEL": "INFO",
            **self.env,
        }
        command = [sys.executable, "-m", "llamaql", "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            # cwd: the database's folder, so no .env of the checkout applies.
            self.process = subprocess.Popen(
                command, env=env, cwd=self.database.parent, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited ({self.process.returncode}):\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"server not healthy after {START_TIMEOUT_S}s:\n{self.tail()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Http:
    """Queries and mutations over HTTP as one user."""

    def __init__(self, server: Server, user: str) -> None:
        self.server = server
        self.user = user

    async def post(self, query: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=EVENT_TIMEOUT_S) as client:
            response = await client.post(
                self.server.http_url,
                json={"query": query, "variables": variables},
                headers={"X-User-ID": self.user},
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.post(query, **variables)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def create_conversation(self, **fields: Any) -> str:
        data = await self.data(
            "mutation($input: CreateConversationInput) {"
            " createConversation(input: $input) { id } }",
            input=fields,
        )
        conversation_id: str = data["createConversation"]["id"]
        return conversation_id

    async def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        conversation = (await self.data(MESSAGES, id=conversation_id))["conversation"]
        return [edge["node"] for edge in conversation["messages"]["edges"]]

    async def cancel(self, message_id: str) -> dict[str, Any]:
        return await self.post(
            "mutation($id: ID!) { cancelGeneration(messageId: $id) }", id=message_id
        )


class Socket:
    """One graphql-transport-ws connection; events are kept per operation id."""

    def __init__(self, url: str, init_payload: Mapping[str, Any] | None) -> None:
        self.url = url
        self.init_payload = init_payload
        self.connection: ClientConnection | None = None
        self._pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._next_id = 0

    async def __aenter__(self) -> Self:
        self.connection = await websockets.connect(
            self.url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        )
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
        self._next_id += 1
        op_id = str(self._next_id)
        variables = {"conversationId": conversation_id, "text": text, "options": options}
        await self._send(
            {"type": "subscribe", "id": op_id, "payload": {"query": SEND, "variables": variables}}
        )
        return op_id

    async def complete(self, op_id: str) -> None:
        """The client's `complete`: unsubscribe (the server cancels the reply)."""
        await self._send({"type": "complete", "id": op_id})

    async def event(self, op_id: str) -> dict[str, Any]:
        """The operation's next ChatEvent (its data.sendMessage)."""
        while not self._pending[op_id]:
            message = await self._recv()
            self._pending[message.get("id", "")].append(message)
        message = self._pending[op_id].pop(0)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        event: dict[str, Any] = message["payload"]["data"]["sendMessage"]
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


def connect(server: Server, user: str | None) -> Socket:
    return Socket(server.ws_url, {"X-User-ID": user} if user is not None else None)


def new_user() -> str:
    return str(uuid.uuid4())


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["text"] for e in events if e["__typename"] == "TokenDelta")
