"""Benchmark: how late a replyStream watcher sees a reply's text, on the replica that
generates it and on another replica.

A sender streams a reply with sendMessage on replica A; as soon as its first text
arrives, a watcher follows the same reply with replyStream on A (same replica) and,
when a PostgreSQL URL is given (--postgres or LLAMAQL_TEST_POSTGRES_URL), another on
replica B (two `llamaql serve` sharing one scratch database). All sockets live in this
one process, on one clock.

"Generation time" of a piece of text is when the sender on A received it: the closest
observable point to the engine's hand-off (the sender's socket is on the generating
replica, over loopback). For every frame a watcher receives, its delay is its arrival
time minus the sender's arrival time of the frame that completed the same text offset:
the extra latency a watcher has over the sender. The first frame of each watcher (the
catch-up of the text so far) is left out, as it reports text the sender had before the
watcher attached.

In the same run, on the same servers, `bench/live_events.py` measures the events
feed's delay (a rename's event, from its commit and from the request, to its arrival at
an `events` subscriber on A and on B), reported under `events_feed`. Both servers run
the default settings (titles on), as users run them.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench.client import bench_socket, create_conversation
from bench.common import Result, ms, p50_p95, scratch_postgres
from bench.live_events import measure_event_delay
from bench.server import ServerProcess
from llamaql.client.gqlws import GraphQLSocket
from llamaql.config import Config

POSTGRES_ENV = "LLAMAQL_TEST_POSTGRES_URL"
PROMPT = "Count from 1 to 200, separated by commas."
EVENTS = """{ __typename ... on TokenDelta { text }
  ... on MessageQueued { assistantMessageId } ... on MessageCompleted { message { text } }
  ... on MessageFailed { code reason } }"""
SEND = f"""subscription($cid: ID!, $text: String!, $options: GenerationOptionsInput) {{
  sendMessage(conversationId: $cid, text: $text, options: $options) {EVENTS} }}"""
WATCH = f"""subscription($id: ID!) {{ replyStream(messageId: $id) {EVENTS} }}"""
EVENTS_FEED = "events_feed"  # bench/live_events.py's figures


@dataclass(frozen=True, slots=True)
class LiveParams:
    replies: int = 5  # replies measured, one after another
    max_tokens: int = 128
    event_samples: int = 50  # renames whose events are timed
    postgres_url: str | None = None  # None: LLAMAQL_TEST_POSTGRES_URL, else skipped


SMOKE = LiveParams(replies=1, max_tokens=48, event_samples=3)


@dataclass(slots=True)
class Frames:
    """(text offset reached, arrival time) of each TokenDelta of one stream."""

    frames: list[tuple[int, float]]
    text: str = ""

    def add(self, piece: str) -> None:
        self.text += piece
        self.frames.append((len(self.text), time.perf_counter()))


async def _read(socket: GraphQLSocket, op_id: str, frames: Frames) -> dict[str, Any]:
    """TokenDeltas into `frames` until the terminal event, which it returns."""
    while True:
        message = await socket.receive()
        if message.get("id") != op_id or message.get("type") != "next":
            continue
        [event] = message["payload"]["data"].values()
        if event["__typename"] == "TokenDelta":
            frames.add(event["text"])
        elif event["__typename"] in ("MessageCompleted", "MessageFailed"):
            return dict(event)


def delays(sender: Frames, watcher: Frames) -> list[float]:
    """Each watcher frame (after its catch-up) minus the sender's time for its offset."""
    out: list[float] = []
    for end, at in watcher.frames[1:]:
        origin = next((t for offset, t in sender.frames if offset >= end), None)
        if origin is not None:
            out.append(at - origin)
    return out


async def _one_reply(
    sender_url: str, watch_urls: dict[str, str], user: str, cid: str, max_tokens: int
) -> dict[str, list[float]]:
    """One reply on the sender's server, watched from each of `watch_urls`."""
    options = {"temperature": 0.0, "maxTokens": max_tokens}
    sockets = {
        name: await bench_socket(url, user).open(ack_timeout=30) for name, url in watch_urls.items()
    }
    sender_socket = await bench_socket(sender_url, user).open(ack_timeout=30)
    try:
        sender = Frames([])
        op = uuid.uuid4().hex
        await sender_socket.subscribe(
            SEND, {"cid": cid, "text": PROMPT, "options": options}, op_id=op
        )
        reply_id = await _reply_id(sender_socket, op, sender)
        watchers = {name: Frames([]) for name in sockets}
        tasks = []
        for name, socket in sockets.items():
            watch_op = uuid.uuid4().hex
            await socket.subscribe(WATCH, {"id": reply_id}, op_id=watch_op)
            tasks.append(asyncio.create_task(_read(socket, watch_op, watchers[name])))
        await _read(sender_socket, op, sender)
        async with asyncio.timeout(60):
            await asyncio.gather(*tasks)
        for name, frames in watchers.items():
            if frames.text != sender.text:
                raise AssertionError(f"watcher {name} got other text than the sender")
        return {name: delays(sender, frames) for name, frames in watchers.items()}
    finally:
        for socket in (sender_socket, *sockets.values()):
            await socket.close()


async def _reply_id(socket: GraphQLSocket, op_id: str, frames: Frames) -> str:
    """The reply's id, once its first text arrived (the sender's frames record it)."""
    reply_id: str | None = None
    while not frames.text:
        message = await socket.receive()
        if message.get("id") != op_id or message.get("type") != "next":
            continue
        [event] = message["payload"]["data"].values()
        if event["__typename"] == "MessageQueued":
            reply_id = event["assistantMessageId"]
        elif event["__typename"] == "TokenDelta":
            frames.add(event["text"])
        else:
            raise RuntimeError(f"the reply ended before its first text: {event}")
    assert reply_id is not None
    return reply_id


async def _measure(
    settings: Config, params: LiveParams, a: ServerProcess, b: ServerProcess | None
) -> dict[str, list[float]]:
    user = str(uuid.uuid4())
    found: dict[str, list[float]] = {"same_replica": [], "other_replica": []}
    watch_urls = {"same_replica": a.ws_url}
    if b is not None:
        watch_urls["other_replica"] = b.ws_url
    async with httpx.AsyncClient(timeout=30) as http:
        for index in range(params.replies):
            cid = await create_conversation(http, a.http_url, user, f"live {index}")
            measured = await _one_reply(a.ws_url, watch_urls, user, cid, params.max_tokens)
            for name, values in measured.items():
                found[name].extend(values)
    return found


async def run(settings: Config, params: LiveParams) -> Result:
    postgres = params.postgres_url or os.environ.get(POSTGRES_ENV)
    if postgres:
        async with scratch_postgres(postgres) as url:
            common = {"LLAMAQL_DATABASE_URL": url}
            async with (
                ServerProcess(settings, extra_env={**common, "LLAMAQL_REPLICA_ID": "live-a"}) as a,
                ServerProcess(settings, extra_env={**common, "LLAMAQL_REPLICA_ID": "live-b"}) as b,
            ):
                found = await _measure(settings, params, a, b)
                events = await measure_event_delay(
                    a.http_url, other_url=b.http_url, samples=params.event_samples
                )
        other: Any = None
    else:
        async with ServerProcess(settings) as a:
            found = await _measure(settings, params, a, None)
            events = await measure_event_delay(a.http_url, samples=params.event_samples)
        other = f"skipped: no PostgreSQL (set {POSTGRES_ENV} or pass --postgres URL)"
    same = p50_p95([ms(v) for v in found["same_replica"]])
    figures: dict[str, Any] = {
        "reference": "the sender's receipt on the generating replica",
        "same_replica_delay_ms": same,
        "other_replica_delay_ms": other or p50_p95([ms(v) for v in found["other_replica"]]),
        "frames": {name: len(values) for name, values in found.items()},
        EVENTS_FEED: events,
    }
    other_text = (
        other
        if isinstance(other, str)
        else f"p95 {figures['other_replica_delay_ms'].get('p95')} ms"
    )
    summary = (
        f"live: replyStream watcher delay behind the sender, same replica p50 "
        f"{same.get('p50')} / p95 {same.get('p95')} ms; other replica {other_text}; "
        f"events feed from commit {_feed_summary(events)}"
    )
    return Result("live", asdict(params) | {"postgres_url": bool(postgres)}, figures, summary)


def _feed_summary(events: dict[str, object]) -> str:
    parts = []
    for name in ("same_replica", "other_replica"):
        figures = events.get(name)
        if isinstance(figures, dict):
            spread = figures.get("from_commit_ms", {})
            parts.append(f"{name.replace('_', ' ')} p95 {spread.get('p95')} ms")
    return ", ".join(parts) or "not measured"
