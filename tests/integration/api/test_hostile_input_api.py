"""Hostile input is refused as a client error (400 / BAD_USER_INPUT), with nothing
written: bodies that are not objects, forged cursors and ids, NUL characters and lone
surrogates in any text input."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.fakes.engine import FakeEngine
from tests.integration.api.conftest import ALICE, Api, AppFactory

COUNT = "{ conversations { totalCount } }"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _post_raw(client: TestClient, body: str) -> Any:
    """POST exactly this JSON text (json.dumps escapes lone surrogates as \\udxxx)."""
    return client.post(
        "/graphql",
        content=body.encode(),
        headers={"Content-Type": "application/json", "X-User-ID": ALICE},
    )


def _codes(client: TestClient, query: str, variables: dict[str, Any]) -> list[str]:
    response = _post_raw(client, json.dumps({"query": query, "variables": variables}))
    assert response.status_code == 200, response.text
    errors = response.json()["errors"]
    return [error["extensions"]["code"] for error in errors]


@pytest.mark.parametrize("body", ['"x"', "5", "null", "true", "[1]"])
def test_a_body_that_is_not_an_object_is_400_in_graphql_shape(api: Api, body: str) -> None:
    response = _post_raw(api.client, body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_malformed_json_is_400_in_graphql_shape(api: Api) -> None:
    response = _post_raw(api.client, '{"query": ')
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Unable to parse request body as JSON"


FORGED_CURSORS = [
    "bTrCsg==",  # "m:²": str.isdigit() says yes, int() says no
    "1" * 5000,
    _b64("m:" + "9" * 5000),
    _b64("m:99999999999999999999"),
    _b64("c:not-a-date|nope"),
    "%%%",
    "\ud800",
]


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
def test_forged_cursors_are_bad_user_input(api: Api, cursor: str) -> None:
    conversation = api.create(ALICE)["id"]
    messages = (
        "query($id: ID!, $a: String) {"
        " conversation(id: $id) { messages(after: $a) { totalCount } } }"
    )
    listing = "query($a: String) { conversations(after: $a) { totalCount } }"
    assert _codes(api.client, messages, {"id": conversation, "a": cursor}) == ["BAD_USER_INPUT"]
    assert _codes(api.client, listing, {"a": cursor}) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("bad_id", ["nope", "x" * 5000, "\x00", "\udfff", ""])
def test_malformed_ids_are_bad_user_input(api: Api, bad_id: str) -> None:
    for query in (
        "query($id: ID!) { conversation(id: $id) { id } }",
        'mutation($id: ID!) { updateConversation(id: $id, input: {title: "t"}) { id } }',
        "mutation($id: ID!) { deleteConversation(id: $id) }",
        "mutation($id: ID!) { cancelGeneration(messageId: $id) }",
    ):
        response = _post_raw(api.client, json.dumps({"query": query, "variables": {"id": bad_id}}))
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (query, error)
        assert len(error["message"]) < 200


HOSTILE_TEXTS = ["a\x00b", "a\ud800b", "\udc00", "ok \U0001f600 then \x00"]
CREATE = "mutation($input: CreateConversationInput) { createConversation(input: $input) { id } }"


@pytest.mark.parametrize("hostile", HOSTILE_TEXTS)
@pytest.mark.parametrize(
    "field",
    [
        lambda t: {"title": t},
        lambda t: {"systemPrompt": t},
        lambda t: {"options": {"stop": ["fine", t]}},
    ],
    ids=["title", "systemPrompt", "stop"],
)
def test_nul_and_lone_surrogates_are_refused_with_nothing_written(
    api: Api, hostile: str, field: Any
) -> None:
    assert _codes(api.client, CREATE, {"input": field(hostile)}) == ["BAD_USER_INPUT"]
    assert api.data(COUNT)["conversations"]["totalCount"] == 0


def test_a_valid_astral_character_is_accepted(api: Api) -> None:
    created = api.create(ALICE, title="party \U0001f389")
    assert created["title"] == "party \U0001f389"


@pytest.mark.parametrize("hostile", HOSTILE_TEXTS)
def test_updates_with_hostile_text_change_nothing(api: Api, hostile: str) -> None:
    conversation = api.create(ALICE, title="before")["id"]
    update = (
        "mutation($id: ID!, $t: String) { updateConversation(id: $id, input: {title: $t}) { id } }"
    )
    assert _codes(api.client, update, {"id": conversation, "t": hostile}) == ["BAD_USER_INPUT"]
    title = api.data("query($id: ID!) { conversation(id: $id) { title } }", {"id": conversation})
    assert title == {"conversation": {"title": "before"}}


def test_hostile_string_literals_in_the_document_are_refused(api: Api) -> None:
    # Raw in the JSON text, or as a GraphQL escape that the lexer turns into a NUL.
    for hostile in ("a\x00b", "a\ud800b", "a\\u0000b"):
        query = 'mutation { createConversation(input: {title: "' + hostile + '"}) { id } }'
        assert _codes(api.client, query, {}) == ["BAD_USER_INPUT"]
    response = _post_raw(
        api.client, json.dumps({"query": '{ conversation(id: "\\u0000") { id } }'})
    )
    assert "contains a NUL character" in response.json()["errors"][0]["message"]
    assert api.data(COUNT)["conversations"]["totalCount"] == 0


SEND = """subscription($id: ID!, $text: String!) { sendMessage(conversationId: $id, text: $text) {
  __typename ... on MessageFailed { code } } }"""
MESSAGES = "query($id: ID!) { conversation(id: $id) { messages { totalCount } } }"


@pytest.mark.parametrize("hostile", HOSTILE_TEXTS)
def test_send_message_with_hostile_text_writes_nothing(make_app: AppFactory, hostile: str) -> None:
    engine = FakeEngine()
    with TestClient(make_app(engine=engine)) as client:
        api = Api(client)
        conversation = api.create(ALICE)["id"]
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
            assert ws.receive_json() == {"type": "connection_ack"}
            variables = {"id": conversation, "text": hostile}
            message = {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SEND, "variables": variables},
            }
            ws.send_text(json.dumps(message))
            refused = ws.receive_json()
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "$text" in refused["payload"][0]["message"]
        count = api.data(MESSAGES, {"id": conversation})["conversation"]["messages"]["totalCount"]
        assert count == 0
