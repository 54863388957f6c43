"""The documented nginx config in front of a real llamaql: the proxy names the user,
clients cannot, replies stream over WebSocket through it, Origins are checked through it,
and /metrics stays private."""

from __future__ import annotations

import re
from typing import Any, Self

import httpx
import pytest
import websockets
from tests.integration.chat.gqlws import Socket
from tests.integration.chat.live import REPO_ROOT, Server, streamed_text
from tests.integration.deploy.conftest import LISTED_ORIGIN, UNMAPPED, USERS, Proxy
from websockets.asyncio.client import connect as ws_connect

pytestmark = [pytest.mark.model, pytest.mark.slow]

DEPLOYMENT_DOC = REPO_ROOT / "docs" / "deployment.md"
# The page's PromQL and alert rules (nginx blocks hold nginx variables, not metrics).
FENCED = re.compile(r"^```(?:promql|yaml)\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
ALICE, BOB = USERS["alice"], USERS["bob"]
CREATE = 'mutation { createConversation(input: {title: "via the proxy"}) { id } }'
LIST = "{ conversations { totalCount edges { node { id } } } }"
ONE = "query($id: ID!) { conversation(id: $id) { id title } }"
GREEDY = {"temperature": 0.0, "maxTokens": 16}


async def _post(
    proxy: Proxy,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    login: str | None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {**(headers or {}), **({"Authorization": proxy.basic(login)} if login else {})}
    async with httpx.AsyncClient(verify=proxy.ssl_context(), timeout=60) as client:
        return await client.post(
            proxy.http_url, json={"query": query, "variables": variables or {}}, headers=sent
        )


async def _data(proxy: Proxy, query: str, login: str, **kwargs: Any) -> dict[str, Any]:
    response = await _post(proxy, query, login=login, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _ids(proxy: Proxy, login: str) -> set[str]:
    edges = (await _data(proxy, LIST, login))["conversations"]["edges"]
    return {edge["node"]["id"] for edge in edges}


class ProxiedSocket(Socket):
    """graphql-transport-ws through the proxy: TLS, basic auth and an Origin on the
    upgrade request, like a browser page logged in to the proxy."""

    def __init__(
        self,
        proxy: Proxy,
        login: str,
        payload: dict[str, Any] | None = None,
        origin: str | None = None,
    ) -> None:
        super().__init__(proxy.ws_url, payload)
        self.proxy, self.login, self.origin = proxy, login, origin

    async def __aenter__(self) -> Self:
        self.connection = await ws_connect(
            self.url,
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
            additional_headers={"Authorization": self.proxy.basic(self.login)},
            origin=websockets.Origin(self.origin) if self.origin else None,
            ssl=self.proxy.ssl_context(),
        )
        message: dict[str, Any] = {"type": "connection_init"}
        if self.init_payload is not None:
            message["payload"] = dict(self.init_payload)
        await self._send(message)
        ack = await self._recv()
        assert ack["type"] == "connection_ack", ack
        return self


async def _refused_with(socket: ProxiedSocket) -> int:
    """The close code of a socket the server must close right after connection_init."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with socket:
            pass
    assert closed.value.rcvd is not None, closed.value
    return closed.value.rcvd.code


async def test_each_user_sees_only_their_own_conversations(proxy: Proxy) -> None:
    created = (await _data(proxy, CREATE, "alice"))["createConversation"]["id"]
    assert created in await _ids(proxy, "alice")
    assert created not in await _ids(proxy, "bob")
    assert (await _data(proxy, ONE, "bob", variables={"id": created}))["conversation"] is None


async def test_a_client_sent_user_id_is_replaced_by_the_proxy(proxy: Proxy) -> None:
    # alice claims to be bob: the proxy overwrites the header, so she acts as herself.
    claimed = await _data(proxy, CREATE, "alice", headers={"X-User-ID": BOB})
    created = claimed["createConversation"]["id"]
    assert created in await _ids(proxy, "alice")
    assert created not in await _ids(proxy, "bob")

    # No login: the proxy answers 401 whatever the header says.
    anonymous = await _post(proxy, LIST, login=None, headers={"X-User-ID": BOB})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")

    # Logged in without a mapped id: llamaql is told "unmapped", never the client's id.
    unmapped = await _post(proxy, LIST, login=UNMAPPED, headers={"X-User-ID": BOB})
    assert unmapped.status_code == 200, unmapped.text
    codes = [error["extensions"]["code"] for error in unmapped.json()["errors"]]
    assert codes == ["UNAUTHENTICATED"]


async def test_a_websocket_payload_cannot_override_the_proxy(proxy: Proxy) -> None:
    assert await _refused_with(ProxiedSocket(proxy, "alice", {"X-User-ID": BOB})) == 4403
    # Without a mapped id, the payload is not a way in either.
    assert await _refused_with(ProxiedSocket(proxy, UNMAPPED, {"X-User-ID": BOB})) == 4403
    # The payload may repeat what the proxy set.
    async with ProxiedSocket(proxy, "alice", {"X-User-ID": ALICE}):
        pass


async def test_a_reply_streams_through_the_proxy(proxy: Proxy) -> None:
    cid = (await _data(proxy, CREATE, "bob"))["createConversation"]["id"]
    # No payload at all: the socket is bob's because the proxy said so on the upgrade.
    async with ProxiedSocket(proxy, "bob", origin=proxy.origin) as ws:
        events = await ws.stream(await ws.send_message(cid, "What is 2 + 2?", GREEDY))

    assert events[0]["__typename"] == "MessageQueued"
    assert any(e["__typename"] == "TokenDelta" for e in events)
    done = events[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert done["message"]["status"] == "COMPLETE"
    assert done["message"]["text"] == streamed_text(events) != ""
    messages = "query($id: ID!) { conversation(id: $id) { messages { edges { node { text } } } } }"
    stored = await _data(proxy, messages, "bob", variables={"id": cid})
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
    socket = ProxiedSocket(proxy, "alice", {"X-User-ID": ALICE}, origin=sent)
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
        public = await client.get(
            f"{proxy.origin}/metrics", headers={"Authorization": proxy.basic("alice")}
        )
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
