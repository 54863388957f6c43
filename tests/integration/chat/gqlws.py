"""The chat tests' graphql-transport-ws client: llamaql.client.gqlws (the one client the
terminal client and the benchmarks use too) with the chat operations and bounded waits."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Self

from llamaql.client.gqlws import GraphQLSocket

EVENT_TIMEOUT_S = 180.0
TERMINAL = frozenset({"MessageCompleted", "MessageFailed"})

EVENT_SELECTION = """{
    __typename
    ... on MessageQueued {
      userMessage { id text role status parentId } assistantMessageId position loading
    }
    ... on TokenDelta { messageId text }
    ... on MessageCompleted { message { ...Reply } }
    ... on MessageFailed { code reason retryable assistantMessage { ...Reply } }
  }"""
REPLY_FRAGMENT = """
fragment Reply on Message {
  id role status text finishReason parentId model
  usage { promptTokens completionTokens }
}
"""
SEND = f"""
subscription Send(
  $conversationId: ID!, $text: String!, $options: GenerationOptionsInput, $close: Boolean
) {{
  sendMessage(
    conversationId: $conversationId, text: $text, options: $options, cancelOnClose: $close
  ) {EVENT_SELECTION}
}}
{REPLY_FRAGMENT}"""
REGENERATE = f"""
subscription Regenerate($messageId: ID!, $options: GenerationOptionsInput, $close: Boolean) {{
  regenerate(messageId: $messageId, options: $options, cancelOnClose: $close) \
{EVENT_SELECTION}
}}
{REPLY_FRAGMENT}"""
EDIT = f"""
subscription Edit(
  $messageId: ID!, $text: String!, $options: GenerationOptionsInput, $close: Boolean
) {{
  editMessage(messageId: $messageId, text: $text, options: $options, cancelOnClose: $close) \
{EVENT_SELECTION}
}}
{REPLY_FRAGMENT}"""
WATCH = f"""
subscription Watch($messageId: ID!, $after: Int) {{
  replyStream(messageId: $messageId, after: $after) {EVENT_SELECTION}
}}
{REPLY_FRAGMENT}"""


class Socket(GraphQLSocket):
    """The shared graphql-transport-ws client with the chat tests' conveniences: the
    chat subscriptions, events kept per operation id, every wait bounded."""

    def __init__(self, url: str, init_payload: Mapping[str, Any] | None) -> None:
        super().__init__(url, init_payload=init_payload)
        self._pending: dict[str, list[dict[str, Any]]] = defaultdict(list)

    async def _recv(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.receive(), EVENT_TIMEOUT_S)

    async def open(self, *, ack_timeout: float | None = EVENT_TIMEOUT_S) -> Self:
        return await super().open(ack_timeout=ack_timeout)

    async def send_message(
        self,
        conversation_id: str,
        text: str,
        options: dict[str, Any] | None = None,
        *,
        cancel_on_close: bool | None = None,
    ) -> str:
        """Start a sendMessage subscription; returns its operation id."""
        variables = {
            "conversationId": conversation_id,
            "text": text,
            "options": options,
            "close": cancel_on_close,
        }
        return await self.subscribe(SEND, variables)

    async def regenerate(
        self,
        message_id: str,
        options: dict[str, Any] | None = None,
        *,
        cancel_on_close: bool | None = None,
    ) -> str:
        """Start a regenerate subscription; returns its operation id."""
        variables = {"messageId": message_id, "options": options, "close": cancel_on_close}
        return await self.subscribe(REGENERATE, variables)

    async def edit_message(
        self,
        message_id: str,
        text: str,
        options: dict[str, Any] | None = None,
        *,
        cancel_on_close: bool | None = None,
    ) -> str:
        """Start an editMessage subscription; returns its operation id."""
        variables = {
            "messageId": message_id,
            "text": text,
            "options": options,
            "close": cancel_on_close,
        }
        return await self.subscribe(EDIT, variables)

    async def reply_stream(self, message_id: str, after: int | None = None) -> str:
        """Start a replyStream subscription; returns its operation id."""
        return await self.subscribe(WATCH, {"messageId": message_id, "after": after})

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
