"""viewer: the id the server serves a request as, so a page behind an authenticating
proxy can adopt it (the proxy replaces whatever id the page kept)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient
from tests.integration.api.conftest import ALICE, BOB, Api, AppFactory, closed_code

VIEWER = "{ viewer { id } }"
SECRET = "viewer-test-secret-of-at-least-32-bytes"
ISSUER = "https://id.example"


def test_header_mode_serves_the_header_user(api: Api) -> None:
    assert api.data(VIEWER, user=ALICE) == {"viewer": {"id": ALICE}}
    assert api.data(VIEWER, user=BOB) == {"viewer": {"id": BOB}}
    # The canonical form, so a page comparing ids is not fooled by letter case.
    assert api.data(VIEWER, user=ALICE.upper()) == {"viewer": {"id": ALICE}}


def test_the_viewer_owns_what_it_creates(api: Api) -> None:
    created = api.create(BOB, title="mine")
    viewer = api.data(VIEWER, user=BOB)["viewer"]["id"]
    one = "query($id: ID!) { conversation(id: $id) { id } }"
    found = api.data(one, {"id": created["id"]}, user=viewer)
    assert found == {"conversation": {"id": created["id"]}}


@pytest.mark.parametrize("user", [None, "", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_no_usable_identity_is_unauthenticated(api: Api, user: str | None) -> None:
    assert api.codes(VIEWER, user=user) == ["UNAUTHENTICATED"]


def _ws_viewer(client: TestClient, payload: dict[str, Any], headers: dict[str, str]) -> Any:
    with client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"], headers=headers
    ) as ws:
        ws.send_json({"type": "connection_init", "payload": payload})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": VIEWER}})
        result = ws.receive_json()
        assert ws.receive_json() == {"id": "1", "type": "complete"}
    return result["payload"]["data"]


def test_over_websocket_the_upgrade_header_names_the_viewer(api: Api) -> None:
    assert _ws_viewer(api.client, {}, {"X-User-ID": BOB}) == {"viewer": {"id": BOB}}
    assert _ws_viewer(api.client, {"X-User-ID": ALICE}, {}) == {"viewer": {"id": ALICE}}
    # A payload naming someone else is never served (4403), so viewer cannot be spoofed.
    with api.client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"], headers={"X-User-ID": BOB}
    ) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert closed_code(ws) == 4403


@pytest.fixture
def jwt_api(make_app: AppFactory) -> Iterator[Api]:
    with TestClient(make_app(auth="jwt", jwt_secret=SECRET, jwt_issuer=ISSUER)) as client:
        yield Api(client)


def _bearer(sub: str, **claims: Any) -> dict[str, str]:
    payload = {"sub": sub, "iss": ISSUER, "exp": int(time.time()) + 300, **claims}
    return {"Authorization": f"Bearer {jwt.encode(payload, SECRET, 'HS256')}"}


def _post(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    response = api.client.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_jwt_mode_serves_the_token_subject(jwt_api: Api) -> None:
    assert _post(jwt_api, _bearer(BOB))["data"] == {"viewer": {"id": BOB}}
    # A subject that is not a UUID: the documented UUIDv5 of [issuer, sub].
    derived = str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([ISSUER, "alice@example.com"])))
    assert _post(jwt_api, _bearer("alice@example.com"))["data"] == {"viewer": {"id": derived}}
    # X-User-ID counts for nothing here, even beside a valid token.
    both = _post(jwt_api, {**_bearer(BOB), "X-User-ID": ALICE})
    assert both["data"] == {"viewer": {"id": BOB}}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-User-ID": ALICE},
        {"Authorization": "Bearer not-a-token"},
        _bearer(BOB, exp=int(time.time()) - 60),
    ],
    ids=["none", "header-only", "malformed", "expired"],
)
def test_jwt_mode_without_a_valid_token_is_unauthenticated(
    jwt_api: Api, headers: dict[str, str]
) -> None:
    body = _post(jwt_api, headers)
    assert body["data"] is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
