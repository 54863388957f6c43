"""The documented nginx config in front of a real llamaql (LLAMAQL_AUTH=header): the
proxy names the user, clients cannot, replies stream over WebSocket through it, Origins
are checked through it, and /metrics stays private."""

from __future__ import annotations

import re

import httpx
import pytest
import websockets
from tests.integration.chat.live import REPO_ROOT, Server, streamed_text
from tests.integration.deploy.clients import ProxiedSocket, close_code, codes, data, post
from tests.integration.deploy.conftest import LISTED_ORIGIN, UNMAPPED, USERS, Proxy

pytestmark = [pytest.mark.model, pytest.mark.slow]

DEPLOYMENT_DOC = REPO_ROOT / "docs" / "deployment.md"
# The page's PromQL and alert rules (nginx blocks hold nginx variables, not metrics).
FENCED = re.compile(r"^```(?:promql|yaml)\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
ALICE, BOB = USERS["alice"], USERS["bob"]
CREATE = 'mutation { createConversation(input: {title: "via the proxy"}) { id } }'
LIST = "{ conversations { totalCount edges { node { id } } } }"
ONE = "query($id: ID!) { conversation(id: $id) { id title } }"
MESSAGES = "query($id: ID!) { conversation(id: $id) { messages { edges { node { text } } } } }"
GREEDY = {"temperature": 0.0, "maxTokens": 16}


def login(proxy: Proxy, user: str, **extra: str) -> dict[str, str]:
    """Headers of a request logged in to the proxy as `user` (plus `extra`)."""
    return {"Authorization": proxy.basic(user), **extra}


async def _ids(proxy: Proxy, user: str) -> set[str]:
    edges = (await data(proxy, LIST, headers=login(proxy, user)))["conversations"]["edges"]
    return {edge["node"]["id"] for edge in edges}


async def test_each_user_sees_only_their_own_conversations(proxy: Proxy) -> None:
    created = (await data(proxy, CREATE, headers=login(proxy, "alice")))["createConversation"]
    assert created["id"] in await _ids(proxy, "alice")
    assert created["id"] not in await _ids(proxy, "bob")
    seen_by_bob = await data(proxy, ONE, {"id": created["id"]}, headers=login(proxy, "bob"))
    assert seen_by_bob["conversation"] is None


async def test_a_client_sent_user_id_is_replaced_by_the_proxy(proxy: Proxy) -> None:
    # alice claims to be bob: the proxy overwrites the header, so she acts as herself.
    claimed = await data(proxy, CREATE, headers=login(proxy, "alice", **{"X-User-ID": BOB}))
    created = claimed["createConversation"]["id"]
    assert created in await _ids(proxy, "alice")
    assert created not in await _ids(proxy, "bob")

    # No login: the proxy answers 401 whatever the header says.
    anonymous = await post(proxy, LIST, headers={"X-User-ID": BOB})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")

    # Logged in without a mapped id: llamaql is told "unmapped", never the client's id.
    unmapped = login(proxy, UNMAPPED, **{"X-User-ID": BOB})
    assert await codes(proxy, LIST, headers=unmapped) == ["UNAUTHENTICATED"]


async def test_a_websocket_payload_cannot_override_the_proxy(proxy: Proxy) -> None:
    as_alice = ProxiedSocket(proxy, login(proxy, "alice"), {"X-User-ID": BOB})
    assert await close_code(as_alice) == 4403
    # Without a mapped id, the payload is no way in either.
    as_carol = ProxiedSocket(proxy, login(proxy, UNMAPPED), {"X-User-ID": BOB})
    assert await close_code(as_carol) == 4403
    # The payload may repeat what the proxy set.
    async with ProxiedSocket(proxy, login(proxy, "alice"), {"X-User-ID": ALICE}):
        pass


async def test_a_reply_streams_through_the_proxy(proxy: Proxy) -> None:
    bob = login(proxy, "bob")
    cid = (await data(proxy, CREATE, headers=bob))["createConversation"]["id"]
    # No payload at all: the socket is bob's because the proxy said so on the upgrade.
    async with ProxiedSocket(proxy, bob, origin=proxy.origin) as ws:
        events = await ws.stream(await ws.send_message(cid, "What is 2 + 2?", GREEDY))

    assert events[0]["__typename"] == "MessageQueued"
    assert any(e["__typename"] == "TokenDelta" for e in events)
    done = events[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert done["message"]["status"] == "COMPLETE"
    assert done["message"]["text"] == streamed_text(events) != ""
    stored = await data(proxy, MESSAGES, {"id": cid}, headers=bob)
    texts = [edge["node"]["text"] for edge in stored["conversation"]["messages"]["edges"]]
    assert texts == ["What is 2 + 2?", done["message"]["text"]]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("own", True),  # the proxy's own https://127.0.0.1:<port>, forwarded as Host
        (LISTED_ORIGIN, True),  # LLAMAQL_ALLOWED_ORIGINS
        ("https://evil.example", False),
        ("https://127.0.0.1", False),  # same host, another port: another origin
    ],
)
async def test_websocket_origins_are_checked_through_the_proxy(
    proxy: Proxy, origin: str | None, allowed: bool
) -> None:
    sent = proxy.origin if origin == "own" else origin
    socket = ProxiedSocket(proxy, login(proxy, "alice"), {"X-User-ID": ALICE}, origin=sent)
    if allowed:
        async with socket:
            return
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with socket:
            pass
    assert refused.value.response.status_code == 403


async def test_metrics_are_private_and_the_documented_ones_exist(
    proxy: Proxy, llamaql: Server
) -> None:
    async with httpx.AsyncClient(verify=proxy.ssl_context(), timeout=60) as client:
        public = await client.get(f"{proxy.origin}/metrics", headers=login(proxy, "alice"))
        assert public.status_code == 403
        page = (await client.get(f"http://127.0.0.1:{llamaql.port}/metrics")).text
    served = set(re.findall(r"^(llamaql_\w+)", page, flags=re.MULTILINE))
    documented = {
        name
        for block in FENCED.findall(DEPLOYMENT_DOC.read_text())
        for name in re.findall(r"\b(llamaql_\w+)", block)
    }
    assert documented, "the deployment page names no metric"
    assert documented <= served, documented - served
