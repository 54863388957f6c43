"""Request headers must be complete within LLAMAQL_HEADER_TIMEOUT_SECONDS: raw sockets
against a real uvicorn server started with the options `llamaql serve` uses, once with
each HTTP implementation uvicorn may pick (httptools, h11). The bounds on waits are
generous (a shared machine); what is checked is whether a connection is closed, not
how fast."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
import websockets
from tests.integration.api.conftest import ALICE
from tests.integration.chat.live import free_port

from llamaql.cli import uvicorn_options
from llamaql.config import Config, load_config
from llamaql.web.app import create_app
from llamaql.web.header_timeout import HttpImplementation, header_timeout_protocol

TIMEOUT_S = 1.0
WAIT_S = 30.0  # far beyond the timeout: only a connection never closed reaches it
QUERY = b'{"query": "{ conversations { totalCount } }"}'
HEAD = (
    b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    b"X-User-ID: " + ALICE.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(QUERY)
)
REQUEST = HEAD + QUERY


@dataclass
class LiveServer:
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=WAIT_S)


@pytest.fixture(params=["httptools", "h11"])
def live(request: pytest.FixtureRequest, config: Config) -> Iterator[LiveServer]:
    http: HttpImplementation = request.param
    timed = load_config(
        **{**config.flat_values(), "header_timeout_seconds": TIMEOUT_S, "port": free_port()}
    )
    options = {**uvicorn_options(timed.server), "http": header_timeout_protocol(TIMEOUT_S, http)}
    server = uvicorn.Server(uvicorn.Config(create_app(timed, engine=None), **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield LiveServer(timed.server.port)
    server.should_exit = True
    thread.join(timeout=30)


def _read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body (the connection stays open after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _trickle_until_closed(sock: socket.socket, start: bytes) -> tuple[bytes, int]:
    """Send `start`, then one header byte every 0.2 s until the server answers or
    closes; what it sent until EOF, and how many bytes were trickled."""
    sock.sendall(start)
    sent = 0
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            return _read_to_eof(sock), sent
        try:
            sock.sendall(b"a")
        except OSError:  # reset while we were sending: closed
            return _read_to_eof(sock), sent
        sent += 1
    pytest.fail(f"the connection was still open after {WAIT_S} s of trickled headers")


def _read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_trickled_headers_get_408_and_the_connection_closes(live: LiveServer) -> None:
    with live.connect() as sock:
        answer, trickled = _trickle_until_closed(sock, b"POST /graphql HTTP/1.1\r\nX-Slow: ")
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert trickled >= 1  # it was trickling, not refused at once


def test_a_connection_that_sends_nothing_is_closed(live: LiveServer) -> None:
    with live.connect() as sock:
        assert _read_to_eof(sock).startswith(b"HTTP/1.1 408 ")


def test_a_normal_request_is_served(live: LiveServer) -> None:
    with live.connect() as sock:
        sock.sendall(REQUEST)
        response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b'{"data":{"conversations":{"totalCount":0}}}')


def test_slow_but_complete_headers_and_a_slow_body_are_served(live: LiveServer) -> None:
    with live.connect() as sock:
        for piece in (HEAD[:10], HEAD[10:40], HEAD[40:]):  # well within the timeout
            sock.sendall(piece)
            time.sleep(0.1)
        for i in range(0, len(QUERY), 12):  # the body may take longer than the timeout
            sock.sendall(QUERY[i : i + 12])
            time.sleep(TIMEOUT_S / 2)
        assert _read_response(sock).startswith(b"HTTP/1.1 200 ")


def test_a_kept_alive_connection_is_timed_per_request(live: LiveServer) -> None:
    with live.connect() as sock:
        sock.sendall(REQUEST)
        assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(TIMEOUT_S * 1.5)  # idle between requests: keep-alive's (5 s), not ours
        sock.sendall(REQUEST)
        assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
        answer, _ = _trickle_until_closed(sock, b"POST /graphql HTTP/1.1\r\nX-Slow: ")
    assert answer.startswith(b"HTTP/1.1 408 "), answer


async def test_websockets_outlive_the_timeout(live: LiveServer) -> None:
    protocol = websockets.Subprotocol("graphql-transport-ws")
    async with websockets.connect(live.ws_url, subprotocols=[protocol]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"X-User-ID": ALICE}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await asyncio.sleep(TIMEOUT_S * 2.5)
        subscribe = {"query": "{ conversations { totalCount } }"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        message = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
    assert message["payload"] == {"data": {"conversations": {"totalCount": 0}}}
