"""Clients that reach llamaql through the proxy: HTTPS POSTs, and graphql-transport-ws
over wss with the headers (a login, a token, an Origin) a browser or script would send."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import websockets
from tests.integration.chat.gqlws import Socket
from tests.integration.deploy.conftest import Proxy
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from llamaql.client.gqlws import PROTOCOL


async def post(
    proxy: Proxy,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    async with httpx.AsyncClient(verify=proxy.ssl_context(), timeout=60) as client:
        return await client.post(
            proxy.http_url, json={"query": query, "variables": variables or {}}, headers=headers
        )


async def data(
    proxy: Proxy,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: dict[str, str],
) -> dict[str, Any]:
    """The operation's data (it must succeed)."""
    response = await post(proxy, query, variables, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]
    return result


async def codes(proxy: Proxy, query: str, *, headers: dict[str, str]) -> list[str]:
    """The extensions.code of each error (the operation must fail in GraphQL)."""
    response = await post(proxy, query, headers=headers)
    assert response.status_code == 200, response.text
    errors = response.json().get("errors")
    assert errors, response.text
    return [error["extensions"]["code"] for error in errors]


class ProxiedSocket(Socket):
    """graphql-transport-ws through the proxy, with these upgrade-request headers."""

    def __init__(
        self,
        proxy: Proxy,
        headers: dict[str, str],
        payload: dict[str, Any] | None = None,
        origin: str | None = None,
    ) -> None:
        super().__init__(proxy.ws_url, payload)
        self.proxy, self.headers, self.origin = proxy, headers, origin

    async def _connect(self) -> ClientConnection:
        return await ws_connect(
            self.url,
            subprotocols=[PROTOCOL],
            additional_headers=self.headers,
            origin=websockets.Origin(self.origin) if self.origin else None,
            ssl=self.proxy.ssl_context(),
        )


async def close_code(socket: ProxiedSocket) -> int:
    """The close code of a socket the server must close right after connection_init."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with socket:
            pass
    assert closed.value.rcvd is not None, closed.value
    return closed.value.rcvd.code
