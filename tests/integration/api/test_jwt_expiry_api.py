"""LLAMAQL_AUTH=jwt: a socket lives no longer than its token. On a real uvicorn server
in this process (real sockets): the socket is closed with 4403 when the token expires
(its `exp` plus the verifier's leeway, the moment HTTP starts refusing it), a new socket
with a fresh token works, and a token that is still good keeps its socket open."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
import websockets
from tests.integration.api.conftest import ALICE
from tests.integration.chat.live import free_port
from websockets.exceptions import ConnectionClosed

from llamaql.auth.bearer import LEEWAY_S
from llamaql.cli import uvicorn_options
from llamaql.client.gqlws import GraphQLSocket
from llamaql.config import Config, load_config
from llamaql.web.app import create_app
from llamaql.web.expiry import EXPIRED_REASON

SECRET = "expiry-test-secret-of-at-least-32-bytes"
COUNT = "{ conversations { totalCount } }"
CREATE = "mutation { createConversation { id } }"
# A token whose `exp` is this far in the past is still accepted for LEEWAY_S minus it:
# a token with two seconds to live, without a test that waits out the leeway.
LIFE_S = 2
WAIT_S = 60.0


def token(*, lives_s: float) -> tuple[str, float]:
    """A token for ALICE accepted for about `lives_s` more seconds; and when it stops."""
    exp = int(time.time() + lives_s) - LEEWAY_S
    return jwt.encode({"sub": ALICE, "exp": exp}, SECRET, "HS256"), exp + LEEWAY_S


@pytest.fixture
def server_url(config: Config) -> Iterator[str]:
    settings = load_config(
        **{**config.flat_values(), "auth": "jwt", "jwt_secret": SECRET, "port": free_port()}
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, engine=None), **uvicorn_options(settings.server))
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"127.0.0.1:{settings.server.port}/graphql"
    server.should_exit = True
    thread.join(timeout=30)


async def run(socket: GraphQLSocket, query: str) -> dict[str, Any]:
    """One query or mutation over the socket; its `next` payload."""
    op_id = await socket.subscribe(query)
    async with asyncio.timeout(WAIT_S):
        result = await socket.receive()
        assert result["type"] == "next", result
        assert await socket.receive() == {"id": op_id, "type": "complete"}
    payload: dict[str, Any] = result["payload"]
    return payload


async def close_of(socket: GraphQLSocket) -> tuple[int | None, str | None, float]:
    """Waits (bounded) for the server to close the socket: its code, reason and when."""
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                message = await socket.receive()
                pytest.fail(f"the socket is still open: {message}")
    except ConnectionClosed as closed:
        when = time.time()
        frame = closed.rcvd
        return (frame.code, frame.reason, when) if frame else (None, None, when)


def http(url: str, bearer: str, query: str) -> dict[str, Any]:
    response = httpx.post(
        f"http://{url}", json={"query": query}, headers={"Authorization": f"Bearer {bearer}"}
    )
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("where", ["upgrade", "payload"])
async def test_the_socket_is_closed_4403_when_its_token_expires(
    server_url: str, where: str
) -> None:
    bearer, expires_at = token(lives_s=LIFE_S)
    value = f"Bearer {bearer}"
    socket = GraphQLSocket(
        f"ws://{server_url}",
        headers={"Authorization": value} if where == "upgrade" else None,
        init_payload={"Authorization": value} if where == "payload" else {},
    )
    async with socket:
        assert (await run(socket, CREATE))["data"]["createConversation"]["id"]
        code, reason, closed_at = await close_of(socket)
    assert (code, reason) == (4403, EXPIRED_REASON)
    assert closed_at >= expires_at  # not before: HTTP still accepted the token until then

    body = await asyncio.to_thread(http, server_url, bearer, COUNT)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert "expired" in body["errors"][0]["message"]

    fresh, _ = token(lives_s=600)
    async with GraphQLSocket(
        f"ws://{server_url}", init_payload={"Authorization": f"Bearer {fresh}"}
    ) as again:
        assert (await run(again, COUNT))["data"] == {"conversations": {"totalCount": 1}}


async def test_a_legacy_graphql_ws_socket_is_closed_too(server_url: str) -> None:
    bearer, expires_at = token(lives_s=LIFE_S)
    async with websockets.connect(
        f"ws://{server_url}", subprotocols=[websockets.Subprotocol("graphql-ws")]
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {bearer}"}}
        await ws.send(json.dumps(init))
        async with asyncio.timeout(WAIT_S):
            assert json.loads(await ws.recv()) == {"type": "connection_ack"}
            await ws.wait_closed()
    assert (ws.close_code, ws.close_reason) == (4403, EXPIRED_REASON)
    assert time.time() >= expires_at


async def test_a_token_still_good_keeps_its_socket(server_url: str) -> None:
    bearer, _ = token(lives_s=600)
    short, short_expiry = token(lives_s=LIFE_S)
    async with GraphQLSocket(
        f"ws://{server_url}", init_payload={"Authorization": f"Bearer {bearer}"}
    ) as lasting:
        # Another socket's token runs out meanwhile; this one still answers after it.
        async with GraphQLSocket(
            f"ws://{server_url}", init_payload={"Authorization": f"Bearer {short}"}
        ) as brief:
            code, _, _ = await close_of(brief)
        assert code == 4403
        assert time.time() >= short_expiry
        assert (await run(lasting, COUNT))["data"] == {"conversations": {"totalCount": 0}}
