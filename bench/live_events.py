"""The `events` feed's delay: from a change's commit to its event at a subscriber.

`measure_event_delay(url)` opens an `events` feed on `url` (and on `other_url`, another
replica of the same database, when given), creates one conversation and renames it
`samples` times, one rename at a time; each rename is one ConversationUpdated on every
feed. Two figures per feed, median and p95 over the samples, in milliseconds:

- `from_commit_ms`: the event's arrival minus its creation time on the server (the time
  in its cursor, taken in the transaction just before the commit). Client and servers
  must share a clock: run it on one host (or synchronised ones).
- `from_request_ms`: the arrival minus when the rename was sent (client clock only; an
  upper bound that includes the mutation's own time).

The lead's `python -m bench live` calls it; it prints nothing itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

import httpx

from bench.client import bench_socket, create_conversation, graphql_http
from bench.common import spread
from llamaql.client.gqlws import GraphQLSocket
from llamaql.services.events.cursors import decode_event_cursor

FEED = """subscription { events {
  __typename
  ... on EventsReset { cursor }
  ... on ConversationUpdated { cursor conversationId }
} }"""
RENAME = """mutation($id: ID!, $title: String) {
  updateConversation(id: $id, input: {title: $title}) { id } }"""
TIMEOUT_S = 30.0


async def _open_feed(url: str, user: str, stack: AsyncExitStack) -> tuple[GraphQLSocket, str]:
    """A feed that is live: its opening EventsReset has arrived."""
    socket = await bench_socket(url.replace("http", "ws", 1), user).open(ack_timeout=TIMEOUT_S)
    stack.push_async_callback(socket.close)
    op = await socket.subscribe(FEED, {})
    opened = await _next_event(socket, op)
    if opened["__typename"] != "EventsReset":
        raise RuntimeError(f"a new feed opened with {opened!r}, not EventsReset")
    return socket, op


async def _next_event(socket: GraphQLSocket, op: str) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(socket.receive(), TIMEOUT_S)
        if message.get("id") != op:
            continue
        if message["type"] != "next" or "errors" in message["payload"]:
            raise RuntimeError(f"events feed failed: {message!r}")
        event: dict[str, Any] = message["payload"]["data"]["events"]
        return event


async def _arrival(socket: GraphQLSocket, op: str, conversation: str) -> tuple[float, float]:
    """(perf_counter, wall clock) when the conversation's next update arrived, and the
    server's event time (wall clock)."""
    while True:
        event = await _next_event(socket, op)
        if event.get("conversationId") == conversation:
            arrived = time.time()
            created = decode_event_cursor(event["cursor"]).at.timestamp()
            return arrived, created


async def measure_event_delay(
    url: str, *, other_url: str | None = None, samples: int = 50, user: str | None = None
) -> dict[str, object]:
    """Delays of `samples` renames' events on `url` (and on `other_url`): see the module
    docstring. `url` is the server's /graphql HTTP URL."""
    user = user or str(uuid.uuid4())
    urls = {"same_replica": url, **({"other_replica": other_url} if other_url else {})}
    from_commit: dict[str, list[float]] = {name: [] for name in urls}
    from_request: dict[str, list[float]] = {name: [] for name in urls}
    async with AsyncExitStack() as stack, httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        feeds = {name: await _open_feed(feed_url, user, stack) for name, feed_url in urls.items()}
        conversation = await create_conversation(client, url, user, "events bench")
        for sample in range(samples):
            arrivals = {
                name: asyncio.create_task(_arrival(socket, op, conversation))
                for name, (socket, op) in feeds.items()
            }
            sent = time.time()
            await graphql_http(
                client, url, user, RENAME, {"id": conversation, "title": f"t{sample}"}
            )
            for name, task in arrivals.items():
                arrived, created = await task
                from_commit[name].append((arrived - created) * 1000)
                from_request[name].append((arrived - sent) * 1000)
    return {
        "samples": samples,
        **{
            name: {
                "from_commit_ms": spread(from_commit[name]),
                "from_request_ms": spread(from_request[name]),
            }
            for name in urls
        },
    }
