"""WebSocket identity: connection_init without a user is refused, with one acked."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tests.fakes.engine import FakeEngine
from tests.integration.api.conftest import ALICE, Api, AppFactory

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


def _count_over_ws(client: TestClient, payload: dict[str, Any], **headers: str) -> Any:
    with client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS], headers=headers) as ws:
        ws.send_json({"type": "connection_init", "payload": payload})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "{ conversations { totalCount } }"},
            }
        )
        result = ws.receive_json()
        assert ws.receive_json() == {"id": "1", "type": "complete"}
        return result


@pytest.mark.parametrize(
    "payload", [{}, {"X-User-ID": ""}, {"X-User-ID": "nope"}, {"X-User-ID": 42}]
)
def test_connection_without_valid_identity_is_refused(api: Api, payload: dict[str, Any]) -> None:
    with api.client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": payload})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4403


@pytest.mark.parametrize("key", ["X-User-ID", "x-user-id", "X-USER-ID"])
def test_identity_in_connection_init_is_acked_and_used(api: Api, key: str) -> None:
    api.create(ALICE)
    result = _count_over_ws(api.client, {key: ALICE})
    assert result == {
        "id": "1",
        "type": "next",
        "payload": {"data": {"conversations": {"totalCount": 1}}},
    }


def test_identity_from_the_upgrade_header_is_accepted(api: Api) -> None:
    api.create(ALICE)
    result = _count_over_ws(api.client, {}, **{"X-User-ID": ALICE})
    assert result["payload"]["data"] == {"conversations": {"totalCount": 1}}


def test_legacy_protocol_checks_identity_too(api: Api) -> None:
    with api.client.websocket_connect("/graphql", subprotocols=[LEGACY_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": {}})
        refused = ws.receive_json()
    assert refused["type"] == "connection_error"
    assert refused["payload"]["code"] == "UNAUTHENTICATED"
    with api.client.websocket_connect("/graphql", subprotocols=[LEGACY_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"type": "connection_terminate"})


SEND = """subscription($id: ID!) { sendMessage(conversationId: $id, text: "hi") {
  __typename ... on MessageQueued { assistantMessageId } } }"""


def test_active_operations_per_connection_are_bounded(make_app: AppFactory) -> None:
    engine = FakeEngine()
    engine.script(paced=True)  # the first reply waits, so its stream stays open
    with TestClient(make_app(engine=engine, max_subscriptions_per_connection=1)) as client:
        conversation = Api(client).create(ALICE)["id"]
        with client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
            assert ws.receive_json() == {"type": "connection_ack"}
            subscribe = {
                "type": "subscribe",
                "payload": {"query": SEND, "variables": {"id": conversation}},
            }
            ws.send_json({"id": "1", **subscribe})
            first = ws.receive_json()
            assert (first["id"], first["type"]) == ("1", "next")
            assert first["payload"]["data"]["sendMessage"]["__typename"] == "MessageQueued"
            ws.send_json({"id": "2", **subscribe})
            refused = ws.receive_json()
            assert (refused["id"], refused["type"]) == ("2", "error")
            assert "limit 1" in refused["payload"][0]["message"]
            assert refused["payload"][0]["extensions"] == {"code": "BAD_USER_INPUT"}
            ws.send_json({"id": "1", "type": "complete"})
