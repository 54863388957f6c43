"""The bench's GraphQL client: HTTP for queries and mutations, graphql-transport-ws for
`sendMessage`, timing every event on arrival.

The WebSocket side is llamaql.client.gqlws, the one graphql-transport-ws client
(connection_init with `X-User-ID`, subscribe, next/error/complete, ping/pong): it hands
each message over as it arrives, so nothing between the socket and the clock buffers or
reorders events.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx

from llamaql.client.gqlws import GraphQLSocket

SEND_MESSAGE = """
subscription Send($conversationId: ID!, $text: String!, $options: GenerationOptionsInput) {
  sendMessage(conversationId: $conversationId, text: $text, options: $options) {
    __typename
    ... on MessageQueued { assistantMessageId position }
    ... on TokenDelta { text }
    ... on MessageCompleted {
      message {
        id text finishReason
        usage {
          promptTokens cachedPromptTokens completionTokens promptMs generationMs
          tokensPerSecond
        }
      }
    }
    ... on MessageFailed { code reason retryable }
  }
}
"""

CREATE_CONVERSATION = """
mutation Create($input: CreateConversationInput) { createConversation(input: $input) { id } }
"""


class GraphQLError(RuntimeError):
    """The server answered with `errors`; the message carries them."""


async def graphql_http(
    client: httpx.AsyncClient,
    url: str,
    user: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    check_status: bool = False,
) -> dict[str, Any]:
    """POST one operation as `user`; its `data`, or GraphQLError when the body has
    `errors`. With `check_status`, a non-2xx answer raises httpx's error first."""
    response = await client.post(
        url, json={"query": query, "variables": variables or {}}, headers={"X-User-ID": user}
    )
    if check_status:
        response.raise_for_status()
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise GraphQLError(f"{url}: {json.dumps(body['errors'])[:500]}")
    data: dict[str, Any] = body["data"]
    return data


async def create_conversation(
    client: httpx.AsyncClient, url: str, user: str, title: str | None
) -> str:
    """A new conversation of `user`'s; with `title=None` it is untitled, so its first reply
    is followed by a model-written title (LLAMAQL_AUTO_TITLE, on by default)."""
    variables = {"input": {"title": title} if title is not None else {}}
    data = await graphql_http(client, url, user, CREATE_CONVERSATION, variables)
    return str(data["createConversation"]["id"])


@dataclass(slots=True)
class StreamTiming:
    """One `sendMessage` as the client saw it; times are `time.perf_counter()` seconds."""

    sent_at: float
    queued_at: float | None = None  # MessageQueued: checks, prompt and first writes done
    delta_times: list[float] = field(default_factory=list)
    text: str = ""
    finished_at: float | None = None
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    failed_code: str | None = None

    @property
    def ttft_s(self) -> float | None:
        return self.delta_times[0] - self.sent_at if self.delta_times else None

    @property
    def queued_s(self) -> float | None:
        return self.queued_at - self.sent_at if self.queued_at is not None else None

    @property
    def completion_tokens(self) -> int:
        return int((self.usage or {}).get("completionTokens") or 0)

    def decode_tps(self) -> float | None:
        """Tokens per second after the first token: (completion tokens - 1) over the time
        from the first to the last TokenDelta."""
        if len(self.delta_times) < 2 or self.completion_tokens < 2:
            return None
        elapsed = self.delta_times[-1] - self.delta_times[0]
        return (self.completion_tokens - 1) / elapsed if elapsed > 0 else None

    def gaps_s(self) -> list[float]:
        times = self.delta_times
        return [later - earlier for earlier, later in itertools.pairwise(times)]


def bench_socket(url: str, user: str) -> GraphQLSocket:
    """A graphql-transport-ws socket identified as `user` (open it with `open()`). No
    keepalive pings and no message size limit: nothing of the client's may interrupt or
    refuse a long stream being timed."""
    return GraphQLSocket(url, init_payload={"X-User-ID": user}, ping_interval=None, max_size=None)


class WsSession:
    """One graphql-transport-ws connection identified as `user`; one stream at a time."""

    def __init__(self, url: str, user: str, *, timeout_s: float = 300.0) -> None:
        self.url = url
        self.user = user
        self.timeout_s = timeout_s
        self._socket: GraphQLSocket | None = None

    async def __aenter__(self) -> Self:
        self._socket = await bench_socket(self.url, self.user).open(ack_timeout=30)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._socket is not None:
            await self._socket.close()
            self._socket = None

    def _open(self) -> GraphQLSocket:
        assert self._socket is not None, "use WsSession as an async context manager"
        return self._socket

    async def ping(self) -> None:
        """One graphql-transport-ws ping answered by a pong: the connection is open and
        the server's loop answers (what the peer benchmark checks before its clock)."""
        async with asyncio.timeout(self.timeout_s):
            await self._open().ping()

    async def send_message(
        self, conversation_id: str, text: str, options: dict[str, Any] | None = None
    ) -> StreamTiming:
        """Run one `sendMessage` to its terminal event (or `timeout_s`) and time it."""
        socket = self._open()
        op_id = uuid.uuid4().hex
        variables = {"conversationId": conversation_id, "text": text, "options": options}
        timing = StreamTiming(sent_at=time.perf_counter())
        await socket.subscribe(SEND_MESSAGE, variables, op_id=op_id)
        async with asyncio.timeout(self.timeout_s):
            while True:
                message = await socket.receive()
                now = time.perf_counter()
                if message.get("id") == op_id and fold_message(timing, message, now):
                    return timing


def fold_message(timing: StreamTiming, message: dict[str, Any], now: float) -> bool:
    """Fold one graphql-transport-ws message of the timed operation into `timing`; True
    when the operation is over (`error` or `complete`). Shared by WsSession and the
    reliability suite's multiplexed socket so both time a stream the same way."""
    if message["type"] == "next":
        if _record(timing, message["payload"], now):
            timing.finished_at = now
    elif message["type"] == "error":
        timing.failed_code = _error_code(message["payload"])
        timing.finished_at = now
        return True
    elif message["type"] == "complete":
        timing.finished_at = timing.finished_at or now
        return True
    return False


def _record(timing: StreamTiming, payload: dict[str, Any], now: float) -> bool:
    """Fold one `next` payload into the timing; True on a terminal event."""
    if payload.get("errors"):
        timing.failed_code = _error_code(payload["errors"])
        return True
    event = payload["data"]["sendMessage"]
    kind = event["__typename"]
    if kind == "MessageQueued" and timing.queued_at is None:
        timing.queued_at = now
    elif kind == "TokenDelta":
        timing.delta_times.append(now)
        timing.text += event["text"]
    elif kind == "MessageCompleted":
        timing.usage = event["message"]["usage"]
        timing.finish_reason = event["message"]["finishReason"]
        return True
    elif kind == "MessageFailed":
        timing.failed_code = event["code"]
        return True
    return False


def _error_code(errors: Any) -> str:
    if isinstance(errors, list) and errors:
        return str((errors[0].get("extensions") or {}).get("code") or "GRAPHQL_ERROR")
    return "GRAPHQL_ERROR"
