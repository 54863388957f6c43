"""LLAMAQL_AUTH=jwt with an HS256 secret: bearer tokens on HTTP and WebSocket."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient
from tests.integration.api.conftest import (
    ALICE,
    BOB,
    AppFactory,
    closed_code,
    ws_conversation_count,
)

from llamaql.auth.bearer import subject_user_id

SECRET = "test-secret-of-at-least-thirty-two-bytes!"
ISSUER = "https://id.example"
AUDIENCE = "llamaql"
COUNT = "{ conversations { totalCount } }"
CREATE = "mutation { createConversation { id } }"


def token(sub: str = ALICE, *, key: str = SECRET, **claims: Any) -> str:
    payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 86400}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, "HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def client(make_app: AppFactory) -> Iterator[TestClient]:
    app = make_app(auth="jwt", jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    with TestClient(app) as client:
        yield client


def post(client: TestClient, query: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def count(client: TestClient, headers: dict[str, str]) -> int:
    body = post(client, COUNT, headers)
    assert "errors" not in body, body
    total: int = body["data"]["conversations"]["totalCount"]
    return total


def test_a_valid_token_names_its_subject(client: TestClient) -> None:
    assert "errors" not in post(client, CREATE, bearer(token(ALICE)))
    assert count(client, bearer(token(ALICE))) == 1
    assert count(client, bearer(token(BOB))) == 0


def test_a_subject_that_is_not_a_uuid_is_a_stable_user_per_issuer(
    make_app: AppFactory,
) -> None:
    # No issuer configured, so tokens of two issuers are both accepted: their users differ.
    with TestClient(make_app(auth="jwt", jwt_secret=SECRET, jwt_audience=AUDIENCE)) as client:
        post(client, CREATE, bearer(token("alice@example.com")))
        assert count(client, bearer(token("alice@example.com"))) == 1
        assert count(client, bearer(token("alice@example.com", iss="https://other"))) == 0
        assert count(client, bearer(token("alice@example.com", iss=None))) == 0
    expected = uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([ISSUER, "alice@example.com"]))
    assert subject_user_id(ISSUER, "alice@example.com") == expected


def _unsigned(claims: dict[str, Any]) -> str:
    """A token with `alg: none` (PyJWT's types want a key; "none" needs None)."""
    return jwt.encode(claims, None, "none")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "Authorization is missing"),
        ({"X-User-ID": ALICE}, "Authorization is missing"),
        ({"Authorization": token()}, "Bearer <token>"),
        (bearer("not.a.token"), "invalid bearer token"),
        (bearer(token(exp=int(time.time()) - 60)), "expired"),
        (bearer(token(key="another-secret-of-at-least-32-bytes!!")), "Signature"),
        (bearer(token(aud="someone-else")), "audience"),
        (bearer(token(iss="https://evil.example")), "issuer"),
        (bearer(token(exp=None)), "exp"),
        (bearer(token(sub="00000000-0000-0000-0000-000000000000")), "nil UUID"),
        (bearer(_unsigned({"sub": ALICE, "exp": 9999999999})), "alg value"),
    ],
)
def test_a_bad_or_missing_token_is_unauthenticated(
    client: TestClient, headers: dict[str, str], fragment: str
) -> None:
    body = post(client, COUNT, headers)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert fragment.lower() in body["errors"][0]["message"].lower()


def test_websocket_takes_the_token_from_the_upgrade_or_the_payload(client: TestClient) -> None:
    post(client, CREATE, bearer(token(ALICE)))
    assert ws_conversation_count(client, {}, bearer(token(ALICE))) == 1
    assert ws_conversation_count(client, {"Authorization": f"Bearer {token(ALICE)}"}, {}) == 1
    assert ws_conversation_count(client, {"authorization": f"Bearer {token(BOB)}"}, {}) == 0


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        ({}, {}),
        ({"X-User-ID": ALICE}, {"X-User-ID": ALICE}),
        ({"Authorization": f"Bearer {token(exp=1)}"}, {}),
        ({"Authorization": f"Bearer {token(BOB)}"}, bearer(token(ALICE))),
    ],
    ids=["none", "x-user-id", "expired", "payload-names-another-user"],
)
def test_websocket_without_a_valid_token_is_closed_4403(
    client: TestClient, payload: dict[str, Any], headers: dict[str, str]
) -> None:
    with client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"], headers=headers
    ) as ws:
        ws.send_json({"type": "connection_init", "payload": payload})
        assert closed_code(ws) == 4403
