"""Request bodies and WebSocket messages are capped, on a real uvicorn server started with
the options `llamaql serve` uses."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
import websockets
from tests.integration.api.conftest import ALICE
from tests.integration.chat.live import free_port

from llamaql.cli import uvicorn_options
from llamaql.config import Config, load_config
from llamaql.web.app import create_app

CAP = 64 * 1024
QUERY = "{ conversations { totalCount } }"


@dataclass
class LiveServer:
    url: str
    ws_url: str


@pytest.fixture
def live(config: Config) -> Iterator[LiveServer]:
    limited = load_config(**{**config.flat_values(), "max_body_bytes": CAP, "port": free_port()})
    server = uvicorn.Server(
        uvicorn.Config(create_app(limited, engine=None), **uvicorn_options(limited.server))
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    base = f"127.0.0.1:{limited.server.port}/graphql"
    yield LiveServer(url=f"http://{base}", ws_url=f"ws://{base}")
    server.should_exit = True
    thread.join(timeout=30)


def _body(size: int) -> bytes:
    """A valid GraphQL request padded with spaces to `size` bytes."""
    body = json.dumps({"query": QUERY}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


HEADERS = {"Content-Type": "application/json", "X-User-ID": ALICE}


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert f"larger than {CAP} bytes" in error["message"]


def test_a_body_within_the_cap_is_served(live: LiveServer) -> None:
    response = httpx.post(live.url, content=_body(CAP), headers=HEADERS)
    assert response.json() == {"data": {"conversations": {"totalCount": 0}}}


def test_a_declared_oversized_body_is_refused_unread(live: LiveServer) -> None:
    _assert_refused(httpx.post(live.url, content=_body(CAP + 1), headers=HEADERS))


def test_a_chunked_oversized_body_is_refused(live: LiveServer) -> None:
    body = _body(2 * CAP)
    chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
    response = httpx.post(live.url, content=chunks, headers=HEADERS)
    assert "content-length" not in response.request.headers
    _assert_refused(response)


async def _ws_roundtrip(url: str, padding: int) -> object:
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"X-User-ID": ALICE}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        message = {"id": "1", "type": "subscribe", "payload": {"query": QUERY + " " * padding}}
        await ws.send(json.dumps(message))
        try:
            return json.loads(await asyncio.wait_for(ws.recv(), 30))
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


async def test_websocket_messages_are_capped(live: LiveServer) -> None:
    served = await _ws_roundtrip(live.ws_url, CAP // 2)
    assert served == {
        "id": "1",
        "type": "next",
        "payload": {"data": {"conversations": {"totalCount": 0}}},
    }
    assert await _ws_roundtrip(live.ws_url, CAP) == 1009  # message too big
