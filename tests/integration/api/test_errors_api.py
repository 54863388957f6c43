"""Every error code reachable without the model, through the real app."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.integration.api.conftest import Api, AppFactory

from llamaql.services.conversations import ConversationService

LIST = "{ conversations { totalCount } }"


@pytest.mark.parametrize("user", [None, "", "not-a-uuid", "1234"])
def test_missing_or_malformed_identity_is_unauthenticated(api: Api, user: str | None) -> None:
    body = api.post(LIST, user=user)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert "X-User-ID" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "query",
    [
        LIST,
        '{ conversation(id: "00000000-0000-0000-0000-000000000000") { id } }',
        "{ model { name } }",
        "mutation { createConversation { id } }",
        'mutation { deleteConversation(id: "00000000-0000-0000-0000-000000000000") }',
    ],
)
def test_every_root_field_needs_identity(api: Api, query: str) -> None:
    assert api.codes(query, user=None) == ["UNAUTHENTICATED"]


def test_introspection_needs_no_identity(api: Api) -> None:
    body = api.post("{ __schema { queryType { name } } }", user=None)
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


@pytest.mark.parametrize(
    ("query", "variables", "fragment"),
    [
        (
            "query($f: Int) { conversations(first: $f) { totalCount } }",
            {"f": 0},
            "first must be between 1 and 100, got 0",
        ),
        (
            "query($f: Int) { conversations(first: $f) { totalCount } }",
            {"f": 101},
            "first must be between 1 and 100, got 101",
        ),
        (
            '{ conversations(after: "garbage!") { totalCount } }',
            None,
            "after is not a valid cursor",
        ),
        ('{ conversation(id: "nope") { id } }', None, "id must be a UUID, got 'nope'"),
        (
            "mutation { createConversation(input: {options: {topP: 1.5}}) { id } }",
            None,
            "top_p must be between 0 and 1",
        ),
        (
            'mutation { createConversation(input: {options: {stop: ["a","b","c","d","e"]}}) {'
            " id } }",
            None,
            "stop takes at most 4 strings",
        ),
        ("{ conversations { nope } }", None, "Cannot query field 'nope'"),
        ('{ conversations(first: "x") { totalCount } }', None, "Int cannot represent"),
        ("{ conversations {", None, "Syntax Error"),
    ],
)
def test_bad_input_is_bad_user_input_with_a_precise_message(
    api: Api, query: str, variables: dict[str, Any] | None, fragment: str
) -> None:
    body = api.post(query, variables)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert fragment in body["errors"][0]["message"]


def test_unknown_or_deleted_ids_are_not_found(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert api.data("query($id: ID!) { conversation(id: $id) { id } }", {"id": missing}) == {
        "conversation": None
    }
    update = 'mutation($id: ID!) { updateConversation(id: $id, input: {title: "x"}) { id } }'
    assert api.codes(update, {"id": missing}) == ["NOT_FOUND"]
    assert api.codes("mutation($id: ID!) { deleteConversation(id: $id) }", {"id": missing}) == [
        "NOT_FOUND"
    ]


class ExplodingService(ConversationService):
    """A service whose storage fails unexpectedly."""

    def __init__(self) -> None:
        pass

    async def list_conversations(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database password is hunter2")


def test_unexpected_errors_are_internal_logged_with_a_request_id(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(make_app(conversation_service=ExplodingService())) as client:
        body = Api(client).post(LIST)
    error = body["errors"][0]
    assert error["message"] == "Internal server error"
    assert "hunter2" not in str(body)
    assert error["extensions"]["code"] == "INTERNAL"
    request_id = error["extensions"]["requestId"]
    logged = [r for r in caplog.records if r.levelno == logging.ERROR and request_id in r.message]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "hunter2" in str(logged[0].exc_info[1])
