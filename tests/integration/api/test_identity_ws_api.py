"""WebSocket identity in header mode: what the proxy put on the upgrade request wins.

A proxy cannot see inside WebSocket frames, so a connection_init payload must never
override the upgrade request's X-User-ID, and a second connection_init must not get a
second chance. Both protocols obey the same rules.
"""

from __future__ import annotations

import pytest
from tests.integration.api.conftest import ALICE, BOB, Api, closed_code, ws_conversation_count

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
NIL = "00000000-0000-0000-0000-000000000000"
COUNT = "{ conversations { totalCount } }"


def test_the_upgrade_header_wins_over_an_identical_or_absent_payload(api: Api) -> None:
    api.create(ALICE)
    assert ws_conversation_count(api.client, {}, {"X-User-ID": ALICE}) == 1
    assert ws_conversation_count(api.client, {"X-User-ID": ALICE}, {"X-User-ID": ALICE}) == 1


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
@pytest.mark.parametrize("payload_user", [BOB, "not-a-uuid"])
def test_a_payload_naming_another_user_than_the_header_is_refused(
    api: Api, protocol: str, payload_user: str
) -> None:
    api.create(BOB)
    headers = {"X-User-ID": ALICE}
    with api.client.websocket_connect("/graphql", subprotocols=[protocol], headers=headers) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": payload_user}})
        assert closed_code(ws) == 4403


def test_a_malformed_upgrade_header_is_not_replaced_by_the_payload(api: Api) -> None:
    headers = {"X-User-ID": "garbage"}
    with api.client.websocket_connect(
        "/graphql", subprotocols=[TRANSPORT_WS], headers=headers
    ) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert closed_code(ws) == 4403


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_a_second_connection_init_closes_the_socket(api: Api, protocol: str) -> None:
    with api.client.websocket_connect("/graphql", subprotocols=[protocol]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": BOB}})
        assert closed_code(ws) == 4429


def test_legacy_protocol_refusal_closes_4403_with_the_reason(api: Api) -> None:
    with api.client.websocket_connect("/graphql", subprotocols=[LEGACY_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": {}})
        refused = ws.receive_json()
        assert refused["type"] == "connection_error"
        assert refused["payload"]["code"] == "UNAUTHENTICATED"
        assert closed_code(ws) == 4403


def test_legacy_protocol_runs_queries_and_mutations(api: Api) -> None:
    api.create(ALICE)
    with api.client.websocket_connect("/graphql", subprotocols=[LEGACY_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json({"id": "1", "type": "start", "payload": {"query": COUNT}})
        assert ws.receive_json() == {
            "type": "data",
            "id": "1",
            "payload": {"data": {"conversations": {"totalCount": 1}}},
        }
        assert ws.receive_json() == {"type": "complete", "id": "1"}
        mutation = 'mutation { createConversation(input: {title: "ws"}) { title } }'
        ws.send_json({"id": "2", "type": "start", "payload": {"query": mutation}})
        created = ws.receive_json()
        assert created["payload"] == {"data": {"createConversation": {"title": "ws"}}}
        assert ws.receive_json() == {"type": "complete", "id": "2"}
        ws.send_json({"id": "3", "type": "start", "payload": {"query": "{ nope }"}})
        error = ws.receive_json()
        assert (error["type"], error["payload"]["extensions"]["code"]) == (
            "error",
            "BAD_USER_INPUT",
        )
    assert api.data(COUNT)["conversations"]["totalCount"] == 2


def test_the_nil_uuid_is_not_a_user(api: Api) -> None:
    body = api.post(COUNT, user=NIL)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert "nil UUID" in body["errors"][0]["message"]
    with api.client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": NIL}})
        assert closed_code(ws) == 4403
