"""Headers: connections that trickle their request headers a byte at a time (slowloris).
Each must get 408 and be closed once LLAMAQL_HEADER_TIMEOUT_SECONDS have passed (not
before, and not much after), while a normal request is served and a WebSocket opened
before them is still open and answering after the timeout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import uuid
from dataclasses import dataclass

import httpx
from websockets.asyncio.client import connect

from bench.reliability.common import Figure, Server, Size
from llamaql.client.gqlws import PROTOCOL as SUBPROTOCOL
from llamaql.config import Config

PARTIAL_HEAD = b"POST /graphql HTTP/1.1\r\nHost: bench\r\nX-Slow: "
SLACK_S = 5.0  # closing may lag the timeout by this much on a busy machine
GIVE_UP_S = 60.0  # beyond the timeout: a connection still open then is never closed
EARLY_S = 0.2  # closed this long before the timeout: not the header timer


@dataclass(frozen=True)
class HeaderParams:
    connections: int
    timeout_s: float
    byte_every_s: float


PARAMS: dict[Size, HeaderParams] = {
    "small": HeaderParams(connections=20, timeout_s=2.0, byte_every_s=0.5),
    "medium": HeaderParams(connections=100, timeout_s=5.0, byte_every_s=1.0),
    "full": HeaderParams(connections=200, timeout_s=10.0, byte_every_s=3.0),
}


@dataclass(frozen=True)
class Ending:
    closed_after_s: float | None  # None: still open when the figure gave up
    answer: bytes


async def _trickle(server: Server, p: HeaderParams) -> Ending:
    """One connection sending a header a byte every `byte_every_s`, until it closes."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

    async def feed() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(PARTIAL_HEAD)
            while True:
                await asyncio.sleep(p.byte_every_s)
                writer.write(b"a")
                await writer.drain()

    feeder = asyncio.create_task(feed())
    try:
        try:
            answer = await asyncio.wait_for(reader.read(), p.timeout_s + GIVE_UP_S)
        except ConnectionResetError:
            answer = b""
        except TimeoutError:
            return Ending(None, b"")
        return Ending(time.monotonic() - started, answer)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        writer.close()


async def _websocket_outlives(server: Server, p: HeaderParams) -> bool:
    """A socket opened before the trickling, asked a query once the timeout has passed."""
    user = str(uuid.uuid4())
    async with connect(server.ws_url, subprotocols=[SUBPROTOCOL], close_timeout=2) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"X-User-ID": user}}))
        await asyncio.wait_for(ws.recv(), 30)
        await asyncio.sleep(p.timeout_s + 1.0)
        payload = {"query": "{ conversations { totalCount } }"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        return bool(message.get("type") == "next" and message["payload"].get("data"))


async def run(settings: Config, size: Size) -> Figure:
    p = PARAMS[size]
    figure = Figure("headers", dict(p.__dict__))
    env = {"LLAMAQL_AUTO_TITLE": "false", "LLAMAQL_HEADER_TIMEOUT_SECONDS": str(p.timeout_s)}
    async with Server(settings, env) as server:
        websocket = asyncio.create_task(_websocket_outlives(server, p))
        tricklers = [asyncio.create_task(_trickle(server, p)) for _ in range(p.connections)]
        await asyncio.sleep(min(1.0, p.timeout_s / 2))  # all of them open and trickling
        async with httpx.AsyncClient(timeout=30) as client:
            started = time.monotonic()
            normal = await client.post(server.http_url, json={"query": "{__typename}"})
            normal_s = time.monotonic() - started
        endings = await asyncio.gather(*tricklers)
        websocket_ok = await websocket
        tracebacks = server.log_text().count("Traceback")
    closed = [e.closed_after_s for e in endings if e.closed_after_s is not None]
    got_408 = sum(1 for e in endings if e.answer.startswith(b"HTTP/1.1 408 "))
    latest = max(closed, default=0.0)
    earliest = min(closed, default=0.0)
    figure.values = {
        "closed": len(closed),
        "answered_408": got_408,
        "closed_after_s": {
            "min": round(earliest, 2),
            "median": round(statistics.median(closed), 2) if closed else None,
            "max": round(latest, 2),
        },
        "normal_request_s": round(normal_s, 3),
        "log_tracebacks": tracebacks,
    }
    n = p.connections
    figure.check("trickling connections closed", f"{len(closed)} of {n}", len(closed) == n, "all")
    figure.check("closed with 408 Request Timeout", f"{got_408} of {n}", got_408 == n, "all")
    figure.check(
        "none closed before the timeout",
        f"{earliest:.2f} s",
        not closed or earliest >= p.timeout_s - EARLY_S,
        f">= {p.timeout_s - EARLY_S:g} s",
    )
    figure.check(
        "last one closed within timeout + slack",
        f"{latest:.2f} s",
        latest <= p.timeout_s + SLACK_S,
        f"<= {p.timeout_s + SLACK_S:g} s",
        enforced=size != "small",  # timing: too noisy to enforce at the smallest size
    )
    figure.check(
        "a normal request meanwhile", normal.status_code, normal.status_code == 200, "HTTP 200"
    )
    figure.check("a WebSocket outlives the timeout and answers", websocket_ok, websocket_ok, "yes")
    figure.check("tracebacks in the server log", tracebacks, tracebacks == 0, "0")
    return figure
