"""regenerate, editMessage, selectBranch and cancelGeneration through the app in this
process (a fake engine; the real model's branch tests run against a live server):
each makes the branch it names current, and another user's message is NOT_FOUND."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient
from tests.fakes.engine import FakeEngine
from tests.integration.api.conftest import ALICE, BOB, Api, AppFactory

TRANSPORT_WS = "graphql-transport-ws"
EVENTS = """__typename
  ... on MessageQueued { assistantMessageId userMessage { id text } }
  ... on MessageCompleted { message { id text parentId status } }
  ... on MessageFailed { code }"""
SEND = f"""subscription($id: ID!, $text: String!) {{
  sendMessage(conversationId: $id, text: $text) {{ {EVENTS} }} }}"""
REGENERATE = f"""subscription($id: ID!) {{ regenerate(messageId: $id) {{ {EVENTS} }} }}"""
EDIT = f"""subscription($id: ID!, $text: String!) {{
  editMessage(messageId: $id, text: $text) {{ {EVENTS} }} }}"""
SELECT = """mutation($id: ID!) { selectBranch(messageId: $id) {
  messages(first: 10) { edges { node { id text } } } } }"""
CANCEL = "mutation($id: ID!) { cancelGeneration(messageId: $id) }"


def stream(
    client: TestClient, query: str, variables: dict[str, Any], user: str = ALICE
) -> list[dict[str, Any]]:
    """One subscription to its end; its events' payloads."""
    with client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": user}})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
        events = []
        while (message := ws.receive_json())["type"] == "next":
            events.append(next(iter(message["payload"]["data"].values())))
        assert message == {"id": "1", "type": "complete"}
        return events


def texts(api: Api, message_id: str) -> list[str]:
    edges = api.data(SELECT, {"id": message_id})["selectBranch"]["messages"]["edges"]
    return [edge["node"]["text"] for edge in edges]


def test_regenerate_edit_and_select_branch_make_their_branch_current(
    make_app: AppFactory,
) -> None:
    engine = FakeEngine()
    with TestClient(make_app(engine=engine)) as client:
        api = Api(client)
        conversation = api.create(ALICE)["id"]
        first = stream(client, SEND, {"id": conversation, "text": "Hello"})
        question = first[0]["userMessage"]
        answer = first[-1]["message"]
        assert answer["status"] == "COMPLETE"

        again = stream(client, REGENERATE, {"id": answer["id"]})
        assert again[0]["userMessage"]["id"] == question["id"]  # the same question
        second = again[-1]["message"]
        assert second["parentId"] == question["id"]
        assert second["id"] != answer["id"]

        edited = stream(client, EDIT, {"id": question["id"], "text": "Hello again"})
        new_question = edited[0]["userMessage"]
        assert new_question["text"] == "Hello again"
        assert new_question["id"] != question["id"]
        assert edited[-1]["message"]["parentId"] == new_question["id"]

        # Back to the first answer's branch, then the edited one.
        assert texts(api, answer["id"]) == ["Hello", answer["text"]]
        assert texts(api, edited[-1]["message"]["id"])[0] == "Hello again"
        # Nothing is generating: there is nothing to cancel.
        assert api.data(CANCEL, {"id": second["id"]}) == {"cancelGeneration": False}

        # Another user's messages are unknown to them, for every operation.
        for query, variables in (
            (REGENERATE, {"id": answer["id"]}),
            (EDIT, {"id": question["id"], "text": "mine"}),
        ):
            assert stream(client, query, variables, user=BOB) == [
                {"__typename": "MessageFailed", "code": "NOT_FOUND"}
            ]
        assert api.codes(SELECT, {"id": answer["id"]}, user=BOB) == ["NOT_FOUND"]
        assert api.codes(CANCEL, {"id": answer["id"]}, user=BOB) == ["NOT_FOUND"]
