"""The `events` subscription for live-server tests: one feed per socket operation."""

from __future__ import annotations

from typing import Any

from tests.integration.chat.gqlws import Socket

FEED = """subscription($since: String) { events(since: $since) {
  __typename
  ... on EventsReset { cursor missed }
  ... on ConversationCreated { cursor conversationId }
  ... on ConversationUpdated { cursor conversationId conversation { title } }
  ... on ConversationDeleted { cursor conversationId }
  ... on ReplyQueued { cursor conversationId messageId }
  ... on ReplyStarted { cursor conversationId messageId }
  ... on ReplyFinished { cursor conversationId messageId status }
  ... on BranchSelected { cursor conversationId messageId }
} }"""
RENAME = """mutation($id: ID!, $title: String) {
  updateConversation(id: $id, input: {title: $title}) { id } }"""
DELETE = "mutation($id: ID!) { deleteConversation(id: $id) }"
SELECT = "mutation($id: ID!) { selectBranch(messageId: $id) { id } }"


async def open_feed(ws: Socket, since: str | None = None) -> str:
    """Subscribe; without `since`, wait for its opening EventsReset (the feed is live)."""
    op = await ws.subscribe(FEED, {"since": since})
    if since is None:
        opened = await ws.event(op)
        assert opened["__typename"] == "EventsReset", opened
        assert opened["missed"] is False, opened
    return op


async def events(ws: Socket, op: str, count: int) -> list[dict[str, Any]]:
    return [await ws.event(op) for _ in range(count)]


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(type, conversation) of each event."""
    return [(e["__typename"], e.get("conversationId")) for e in events]
