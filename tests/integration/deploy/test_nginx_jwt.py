"""The documented nginx config with the deployment page's edits for LLAMAQL_AUTH=jwt, in
front of a real llamaql verifying HS256 tokens: tokens reach llamaql on HTTP and on the
WebSocket upgrade (basic auth no longer takes the Authorization header), X-User-ID means
nothing, and a browser's token in connection_init works through the proxy."""

from __future__ import annotations

import time

import jwt
import pytest
from tests.integration.deploy.clients import ProxiedSocket, close_code, codes, data
from tests.integration.deploy.conftest import JWT_SECRET, USERS, Proxy

pytestmark = [pytest.mark.model, pytest.mark.slow]

ALICE, BOB = USERS["alice"], USERS["bob"]
CREATE = "mutation { createConversation { id } }"
LIST = "{ conversations { edges { node { id } } } }"


def bearer(user: str) -> str:
    claims = {"sub": user, "exp": int(time.time()) + 300}
    return f"Bearer {jwt.encode(claims, JWT_SECRET, 'HS256')}"


async def _ids(proxy: Proxy, user: str) -> set[str]:
    listed = await data(proxy, LIST, headers={"Authorization": bearer(user)})
    return {edge["node"]["id"] for edge in listed["conversations"]["edges"]}


async def test_tokens_name_the_user_through_the_proxy(jwt_proxy: Proxy) -> None:
    # A token for alice plus a header claiming bob: the token decides.
    headers = {"Authorization": bearer(ALICE), "X-User-ID": BOB}
    created = (await data(jwt_proxy, CREATE, headers=headers))["createConversation"]["id"]
    assert created in await _ids(jwt_proxy, ALICE)
    assert created not in await _ids(jwt_proxy, BOB)
    # The proxy no longer authenticates: llamaql refuses what is not a valid token.
    assert await codes(jwt_proxy, LIST, headers={"X-User-ID": ALICE}) == ["UNAUTHENTICATED"]
    forged = {"Authorization": bearer(ALICE)[:-4] + "AAAA"}
    assert await codes(jwt_proxy, LIST, headers=forged) == ["UNAUTHENTICATED"]


async def test_websocket_tokens_through_the_proxy(jwt_proxy: Proxy) -> None:
    cid = (await data(jwt_proxy, CREATE, headers={"Authorization": bearer(BOB)}))[
        "createConversation"
    ]["id"]
    # A script: the token on the upgrade request.
    async with ProxiedSocket(jwt_proxy, {"Authorization": bearer(BOB)}) as ws:
        events = await ws.stream(await ws.send_message(cid, "Hi!", {"maxTokens": 4}))
    assert events[-1]["__typename"] == "MessageCompleted", events[-1]
    # A browser page: no headers of its own, the token in connection_init.
    payload = {"Authorization": bearer(BOB)}
    async with ProxiedSocket(jwt_proxy, {}, payload, origin=jwt_proxy.origin) as ws:
        events = await ws.stream(await ws.send_message(cid, "Bye!", {"maxTokens": 4}))
    assert events[-1]["__typename"] == "MessageCompleted", events[-1]
    # A payload naming someone else than the upgrade's token closes the socket.
    other = ProxiedSocket(jwt_proxy, {"Authorization": bearer(ALICE)}, payload)
    assert await close_code(other) == 4403
