"""WebSocket messages of the wrong shape (graphql-transport-ws and legacy graphql-ws)
close the socket with 4400 ("invalid message"), never an unhandled TypeError (a dropped
socket) or an INTERNAL error. Found by the reliability suite's fuzz figure."""

from __future__ import annotations

import json

import pytest
from tests.integration.api.conftest import ALICE, Api, closed_code

MALFORMED = [
    "[]",
    '"text"',
    "7",
    '{"type": "subscribe", "id": 1, "payload": {"query": "{ __typename }"}}',
    '{"type": "subscribe", "id": "a", "payload": "query"}',
    '{"type": "subscribe", "id": "a", "payload": {"query": 12}}',
    '{"type": "subscribe", "id": "a", "payload": {"query": "{ __typename }", "variables": []}}',
    '{"type": "subscribe", "id": "a", "payload": {"query": "{ __typename }", "operationName": 3}}',
]


@pytest.mark.parametrize("frame", MALFORMED)
def test_a_malformed_message_after_init_closes_4400(api: Api, frame: str) -> None:
    with api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_text(frame)
        assert closed_code(ws) == 4400


def test_a_well_formed_subscribe_still_runs(api: Api) -> None:
    with api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert ws.receive_json() == {"type": "connection_ack"}
        payload = {"query": "{ __typename }", "variables": None, "operationName": None}
        ws.send_text(json.dumps({"type": "subscribe", "id": "a", "payload": payload}))
        assert ws.receive_json()["payload"] == {"data": {"__typename": "Query"}}


LEGACY_MALFORMED = [
    "[]",
    '"start"',
    '{"type": "start", "id": "a", "payload": "query"}',
    '{"type": "start", "id": "a", "payload": {"query": 12}}',
    '{"type": "start", "id": 1, "payload": {"query": "{ __typename }"}}',
    '{"type": "stop"}',
]


@pytest.mark.parametrize("frame", LEGACY_MALFORMED)
def test_legacy_graphql_ws_closes_4400_too(api: Api, frame: str) -> None:
    with api.client.websocket_connect("/graphql", subprotocols=["graphql-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_text(frame)
        assert closed_code(ws) == 4400
