"""Slow reader: clients that never read their socket. Each subscribes to replies and
floods large query results it never reads. The other clients' streams must not slow
down (measured against the same load read normally), and the server's memory must stay
bounded while the unread output piles up (per-connection operation limits and send
flow control hold it, rather than buffering every result)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import statistics
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.client import SEND_MESSAGE, StreamTiming
from bench.reliability.common import Figure, Server, Size
from bench.reliability.wire import Mux, create_conversations
from llamaql.client.gqlws import PROTOCOL as SUBPROTOCOL
from llamaql.config import Config

BIG_QUERY = "{ conversations(first: 100) { edges { node { id systemPrompt } } } }"
PROMPT = "lorem ipsum dolor sit amet " * 1100  # ~30 kB per conversation in BIG_QUERY
MEMORY_BOUND_MB = 96.0
SPEED_BOUND = 0.6


@dataclass(frozen=True)
class SlowParams:
    normal_streams: int  # readers whose speed is measured
    background_replies: int  # long replies on the slow (or, for the baseline, a normal) socket
    flooders: int  # never-reading sockets flooding BIG_QUERY
    floods: int  # BIG_QUERY operations each flooder sends
    big_conversations: int  # rows BIG_QUERY returns
    max_tokens: int = 48
    background_tokens: int = 200


PARAMS: dict[Size, SlowParams] = {
    "small": SlowParams(2, 1, 1, 10, 10, max_tokens=16, background_tokens=32),
    "medium": SlowParams(3, 2, 2, 30, 30),
    "full": SlowParams(4, 2, 4, 40, 30),
}


async def _never_reading(server: Server, user: str) -> ClientConnection:
    """A WebSocket whose client stops reading after the handshake: a tiny receive buffer,
    and websockets stops pulling from the socket once one message is queued."""
    url = urlparse(server.ws_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
    ws = await connect(
        server.ws_url,
        sock=sock,
        subprotocols=[SUBPROTOCOL],
        ping_interval=None,
        max_size=None,
        max_queue=1,
        close_timeout=1,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {"X-User-ID": user}}))
    async with asyncio.timeout(30):
        await ws.recv()  # connection_ack; nothing is read after it
    return ws


async def _subscribe_unread(ws: ClientConnection, query: str, variables: dict[str, Any]) -> None:
    payload = {"query": query, "variables": variables}
    message = {"id": uuid.uuid4().hex, "type": "subscribe", "payload": payload}
    async with asyncio.timeout(10):
        await ws.send(json.dumps(message))


async def _sample_rss(server: Server, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], server.rss_mb())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def _normal_stream(server: Server, p: SlowParams) -> StreamTiming:
    user = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=60) as client:
        (cid,) = await create_conversations(client, server.http_url, user, 1)
    async with Mux(server.ws_url, user, timeout_s=300) as mux:
        text = "Write four sentences about rivers."
        return await mux.send_message(cid, text, {"maxTokens": p.max_tokens, "temperature": 0.0})


async def _phase(
    server: Server, p: SlowParams, flood_users: list[str], *, slow: bool
) -> dict[str, Any]:
    user = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=60) as client:
        background = await create_conversations(client, server.http_url, user, p.background_replies)
    variables = [
        {
            "conversationId": cid,
            "text": "Count from 1 to 200, separated by commas.",
            "options": {"maxTokens": p.background_tokens, "temperature": 0.0},
        }
        for cid in background
    ]
    start_rss = server.rss_mb()
    peak = [start_rss]
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(server, peak, stop))
    unread: list[ClientConnection] = []
    reader_task: asyncio.Future[Any] | None = None
    try:
        if slow:
            holder = await _never_reading(server, user)
            unread.append(holder)
            for v in variables:
                await _subscribe_unread(holder, SEND_MESSAGE, v)
            for flood_user in flood_users:
                flooder = await _never_reading(server, flood_user)
                unread.append(flooder)
                for _ in range(p.floods):
                    with contextlib.suppress(TimeoutError):
                        await _subscribe_unread(flooder, BIG_QUERY, {})
        else:
            reader = Mux(server.ws_url, user)
            await reader.__aenter__()
            reader_task = asyncio.ensure_future(
                asyncio.gather(*(reader.send_message(**v) for v in _kw(variables)))
            )
        timings = await asyncio.gather(
            *(_normal_stream(server, p) for _ in range(p.normal_streams))
        )
        if reader_task is not None:
            await reader_task
            await reader.__aexit__(None, None, None)
    finally:
        stop.set()
        await sampler
        for ws in unread:
            ws.transport.abort()
    speeds = [s for s in (t.decode_tps() for t in timings) if s is not None]
    return {
        "completed": sum(1 for t in timings if t.failed_code is None and t.finish_reason),
        "decode_tps_median": round(statistics.median(speeds), 1) if speeds else None,
        "rss_start_mb": round(start_rss, 1),
        "rss_peak_mb": round(peak[0], 1),
        "rss_growth_mb": round(peak[0] - start_rss, 1),
    }


def _kw(variables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"conversation_id": v["conversationId"], "text": v["text"], "options": v["options"]}
        for v in variables
    ]


async def run(settings: Config, size: Size) -> Figure:
    p = PARAMS[size]
    figure = Figure("slow_reader", dict(p.__dict__))
    env = {"LLAMAQL_AUTO_TITLE": "false", "LLAMAQL_PROMPT_CACHE_MB": "16"}
    async with Server(settings, env) as server:
        # Each flooder is its own user with its own rows: one user's floods would also be
        # held back by that user's database share, and the figure is about the sockets.
        flood_users = [str(uuid.uuid4()) for _ in range(p.flooders)]
        async with httpx.AsyncClient(timeout=60) as client:
            for flood_user in flood_users:
                await create_conversations(
                    client, server.http_url, flood_user, p.big_conversations, systemPrompt=PROMPT
                )
        baseline = await _phase(server, p, flood_users, slow=False)
        slow = await _phase(server, p, flood_users, slow=True)
        async with httpx.AsyncClient(timeout=30) as client:
            alive = (await client.post(server.http_url, json={"query": "{__typename}"})).status_code
    figure.values = {"read_normally": baseline, "never_read": slow}
    figure.check(
        "other streams all completed beside the slow readers",
        slow["completed"],
        slow["completed"] == p.normal_streams,
        f"== {p.normal_streams}",
    )
    ratio = (
        slow["decode_tps_median"] / baseline["decode_tps_median"]
        if slow["decode_tps_median"] and baseline["decode_tps_median"]
        else 0.0
    )
    figure.values["speed_ratio"] = round(ratio, 2)
    figure.check(
        "other streams' decode speed, never-read / read",
        round(ratio, 2),
        ratio >= SPEED_BOUND,
        f">= {SPEED_BOUND}",
        enforced=size != "small",  # timing: too noisy to enforce at the smallest size
    )
    figure.check(
        "server RSS growth while unread output piles up",
        f"{slow['rss_growth_mb']} MiB",
        slow["rss_growth_mb"] <= MEMORY_BOUND_MB,
        f"<= {MEMORY_BOUND_MB:g} MiB",
    )
    figure.check("server still answers afterwards", alive, alive == 200, "HTTP 200")
    return figure
