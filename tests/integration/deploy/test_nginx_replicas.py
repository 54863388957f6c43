"""The deployment page's shape: the shipped nginx config with two llamaql replicas on one
PostgreSQL in its upstream. Requests land on either replica and see the same data, and a
reply streaming from one replica is cancelled by a cancelGeneration that the proxy sends
to the other."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from tests.integration.chat.live import LONG_OPTIONS, LONG_TEXT, Server
from tests.integration.deploy.clients import ProxiedSocket, data
from tests.integration.deploy.conftest import Proxy

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.postgres]

CREATE = "mutation { createConversation { id } }"
LIST = "{ conversations { edges { node { id } } } }"
CANCEL = "mutation($id: ID!) { cancelGeneration(messageId: $id) }"
STATUS = "query($id: ID!) { conversation(id: $id) { messages { edges { node { status } } } } }"
LOG_WAIT_S = 5.0


def _login(proxy: Proxy, user: str) -> dict[str, str]:
    return {"Authorization": proxy.basic(user)}


async def _logged(proxy: Proxy, uri: str) -> str:
    """The upstream that served the request to `uri` (nginx logs a request as it ends,
    which can be just after the client has the response)."""
    deadline = asyncio.get_running_loop().time() + LOG_WAIT_S
    while True:
        for line in proxy.access_log.read_text().splitlines():
            upstream, _method, logged_uri, _status = line.split()
            if logged_uri == uri:
                return upstream
        assert asyncio.get_running_loop().time() < deadline, f"{uri} not in the access log"
        await asyncio.sleep(0.1)


async def _streaming_replica(replicas: list[Server]) -> str:
    """The address of the replica decoding a reply now (read from its own /metrics)."""
    async with httpx.AsyncClient(timeout=30) as client:
        for replica in replicas:
            page = (await client.get(f"http://127.0.0.1:{replica.port}/metrics")).text
            active = re.search(r"^llamaql_active_replies (\S+)$", page, flags=re.MULTILINE)
            if active and float(active.group(1)) > 0:
                return f"127.0.0.1:{replica.port}"
    raise AssertionError("no replica is decoding a reply")


async def test_requests_land_on_both_replicas_and_see_the_same_data(
    replicas_proxy: Proxy, replicas: list[Server]
) -> None:
    alice = _login(replicas_proxy, "alice")
    created = (await data(replicas_proxy, CREATE, headers=alice))["createConversation"]["id"]
    for _ in range(4):
        edges = (await data(replicas_proxy, LIST, headers=alice))["conversations"]["edges"]
        assert created in {edge["node"]["id"] for edge in edges}
    log = replicas_proxy.access_log.read_text().splitlines()
    served_by = {line.split()[0] for line in log if " POST /graphql " in line}
    assert served_by == {f"127.0.0.1:{replica.port}" for replica in replicas}


async def test_a_cancel_reaching_the_other_replica_stops_the_reply(
    replicas_proxy: Proxy, replicas: list[Server]
) -> None:
    bob = _login(replicas_proxy, "bob")
    cid = (await data(replicas_proxy, CREATE, headers=bob))["createConversation"]["id"]
    crossed = False
    # The proxy picks the replica; try again (each time a new reply) until the cancel
    # lands on the replica that is not streaming. Round robin makes it the first try.
    for attempt in range(3):
        async with ProxiedSocket(replicas_proxy, bob) as ws:
            op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
            started = await ws.until(op, "TokenDelta")
            assert started[-1]["__typename"] == "TokenDelta", started[-1]
            streaming = await _streaming_replica(replicas)
            uri = f"/graphql?cancel={attempt}"
            async with httpx.AsyncClient(verify=replicas_proxy.ssl_context()) as client:
                response = await client.post(
                    f"{replicas_proxy.origin}{uri}",
                    json={"query": CANCEL, "variables": {"id": started[0]["assistantMessageId"]}},
                    headers=bob,
                    timeout=60,
                )
            assert response.json() == {"data": {"cancelGeneration": True}}, response.text
            done = (await ws.stream(op))[-1]
        assert done["__typename"] == "MessageCompleted", done
        assert done["message"]["status"] == "CANCELLED"
        if await _logged(replicas_proxy, uri) != streaming:
            crossed = True
            break
    assert crossed, "every cancel reached the streaming replica itself"
    stored = await data(replicas_proxy, STATUS, {"id": cid}, headers=bob)
    statuses = [edge["node"]["status"] for edge in stored["conversation"]["messages"]["edges"]]
    assert statuses[-1] == "CANCELLED"
