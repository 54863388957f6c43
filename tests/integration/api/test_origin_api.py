"""WebSocket upgrades from other origins' pages are refused (cross-site WebSocket
hijacking); the server's own origin, listed origins and Origin-less clients connect."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tests.integration.api.conftest import ALICE, AppFactory

ALLOWED = "https://chat.example"


def _connects(client: TestClient, headers: dict[str, str]) -> bool:
    try:
        with client.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"], headers=headers
        ) as ws:
            ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
            assert ws.receive_json() == {"type": "connection_ack"}
    except WebSocketDisconnect:
        return False
    return True


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("http://testserver", True),  # TestClient's Host: the server's own origin
        (ALLOWED, True),
        ("https://chat.example:443", True),
        ("https://evil.example", False),
        ("http://chat.example", False),
        ("null", False),
    ],
)
def test_websocket_origin_is_checked(
    make_app: AppFactory, origin: str | None, allowed: bool
) -> None:
    headers = {"Origin": origin} if origin is not None else {}
    app = make_app(allowed_origins=f"{ALLOWED}, https://other.example")
    with TestClient(app) as client:
        assert _connects(client, headers) is allowed


def test_without_a_list_only_the_own_origin_connects(make_app: AppFactory) -> None:
    with TestClient(make_app()) as client:
        assert _connects(client, {"Origin": "http://testserver"})
        assert not _connects(client, {"Origin": ALLOWED})
