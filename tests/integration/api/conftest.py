"""The real ASGI app on a real SQLite file, without the inference engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from llamaql.config import Config, load_config
from llamaql.web.app import create_app

ALICE = "0b5f2c1e-3d4a-4e5f-8a9b-1c2d3e4f5a6b"
BOB = "9e8d7c6b-5a49-4382-b716-0f1e2d3c4b5a"


class Api:
    """POSTs GraphQL documents as a given user."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def post(
        self, query: str, variables: dict[str, Any] | None = None, *, user: str | None = ALICE
    ) -> dict[str, Any]:
        headers = {"X-User-ID": user} if user is not None else {}
        response = self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(
        self, query: str, variables: dict[str, Any] | None = None, *, user: str | None = ALICE
    ) -> dict[str, Any]:
        body = self.post(query, variables, user=user)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def codes(
        self, query: str, variables: dict[str, Any] | None = None, *, user: str | None = ALICE
    ) -> list[str]:
        """The extensions.code of each error (the operation must fail)."""
        body = self.post(query, variables, user=user)
        assert body.get("errors"), body
        return [error["extensions"]["code"] for error in body["errors"]]

    def create(self, user: str = ALICE, **fields: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.data(
            "mutation($input: CreateConversationInput) {"
            " createConversation(input: $input) { id title systemPrompt updatedAt } }",
            {"input": fields},
            user=user,
        )["createConversation"]
        return created


AppFactory = Callable[..., Starlette]


@pytest.fixture
def make_app(config: Config) -> AppFactory:
    """create_app with no engine; keyword arguments override settings or container parts."""

    def make(**overrides: Any) -> Starlette:
        setting_names = set(config.flat_values())
        changed = {k: v for k, v in overrides.items() if k in setting_names}
        parts = {k: v for k, v in overrides.items() if k not in setting_names}
        parts.setdefault("engine", None)
        # Validated like real settings (model_copy would skip validation).
        return create_app(load_config(**{**config.flat_values(), **changed}), **parts)

    return make


@pytest.fixture
def api(make_app: AppFactory) -> Iterator[Api]:
    with TestClient(make_app()) as client:
        yield Api(client)


def closed_code(ws: Any) -> int:
    """The close code of a WebSocket the server must be closing (after at most a legacy
    connection_error); any other message fails the test rather than blocking it."""
    try:
        message = ws.receive_json()
        if message["type"] == "connection_error":
            message = ws.receive_json()
    except WebSocketDisconnect as closed:
        return closed.code
    pytest.fail(f"the socket is still open: {message}")


def ws_conversation_count(
    client: TestClient, payload: dict[str, Any], headers: dict[str, str]
) -> int:
    """How many conversations a graphql-transport-ws socket, identified by this
    connection_init payload and these upgrade headers, sees."""
    with client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"], headers=headers
    ) as ws:
        ws.send_json({"type": "connection_init", "payload": payload})
        assert ws.receive_json() == {"type": "connection_ack"}
        query = "{ conversations { totalCount } }"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        result = ws.receive_json()
        assert ws.receive_json() == {"id": "1", "type": "complete"}
    total: int = result["payload"]["data"]["conversations"]["totalCount"]
    return total
