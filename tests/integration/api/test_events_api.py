"""The `events` feed through the app in this process, on a real SQLite file, with real
WebSockets (Starlette's test client) and a fake engine (the real model's feed tests run
against a live server: tests/integration/chat/test_events_live_api.py).

A feed without `since` opens with EventsReset(missed: false): from then on every change
is an event, so the tests act only after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from starlette.testclient import TestClient
from tests.fakes.engine import FakeEngine
from tests.integration.api.conftest import ALICE, BOB, Api, AppFactory
from tests.integration.api.test_branches_ws_api import SELECT, SEND, stream

from llamaql.services.events.cursors import EventCursor, decode_event_cursor

TRANSPORT_WS = "graphql-transport-ws"
FEED = """subscription($since: String) { events(since: $since) {
  __typename
  ... on EventsReset { cursor missed }
  ... on ConversationCreated { cursor conversationId conversation { id title } }
  ... on ConversationUpdated { cursor conversationId conversation { title systemPrompt } }
  ... on ConversationDeleted { cursor conversationId }
  ... on ReplyQueued { cursor conversationId messageId }
  ... on ReplyStarted { cursor conversationId messageId }
  ... on ReplyFinished { cursor conversationId messageId status }
  ... on BranchSelected { cursor conversationId messageId }
} }"""
RENAME = """mutation($id: ID!, $title: String) {
  updateConversation(id: $id, input: {title: $title}) { id } }"""
DELETE = "mutation($id: ID!) { deleteConversation(id: $id) }"


class Feed:
    """One `events` subscription on its own socket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    def next(self) -> dict[str, Any]:
        message = self.ws.receive_json()
        assert message["type"] == "next", message
        event: dict[str, Any] = message["payload"]["data"]["events"]
        return event

    def take(self, count: int) -> list[dict[str, Any]]:
        return [self.next() for _ in range(count)]


@contextmanager
def feed(client: TestClient, user: str = ALICE, since: str | None = None) -> Iterator[Feed]:
    with client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": user}})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": FEED, "variables": {"since": since}},
            }
        )
        yield Feed(ws)
        ws.send_json({"id": "1", "type": "complete"})


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["__typename"] for event in events]


def test_a_feed_sees_every_change_of_its_user_in_commit_order(make_app: AppFactory) -> None:
    with TestClient(make_app(engine=FakeEngine())) as client:
        api = Api(client)
        with feed(client) as alice, feed(client, user=BOB) as bob:
            opened = alice.next()
            assert opened["__typename"] == "EventsReset"
            assert opened["missed"] is False
            assert bob.next()["missed"] is False
            conversation = api.create(ALICE, title="First")["id"]
            api.data(RENAME, {"id": conversation, "title": "Renamed"})
            sent = stream(client, SEND, {"id": conversation, "text": "Hello"})
            reply = sent[-1]["message"]
            api.data(SELECT, {"id": reply["id"]})
            api.data(DELETE, {"id": conversation})
            events = alice.take(7)
            # Bob hears nothing of Alice's: his next event is his own conversation.
            mine = api.create(BOB)["id"]
            assert bob.next()["conversationId"] == mine
        assert kinds(events) == [
            "ConversationCreated",
            "ConversationUpdated",
            "ReplyQueued",
            "ReplyStarted",
            "ReplyFinished",
            "BranchSelected",
            "ConversationDeleted",
        ]
        assert {event["conversationId"] for event in events} == {conversation}
        assert {events[i]["messageId"] for i in (2, 3, 4, 5)} == {reply["id"]}
        assert events[4]["status"] == "COMPLETE"
        keys = [decode_event_cursor(event["cursor"]).key for event in events]
        assert keys == sorted(keys)
        assert len(set(keys)) == len(keys)


def test_since_replays_exactly_what_was_missed_then_goes_live(make_app: AppFactory) -> None:
    with TestClient(make_app()) as client:
        api = Api(client)
        with feed(client) as alice:
            alice.next()
            first = api.create(ALICE, title="one")["id"]
            seen = alice.next()
        # Disconnected: two changes happen meanwhile.
        second = api.create(ALICE, title="two")["id"]
        api.data(RENAME, {"id": first, "title": "one, renamed"})
        with feed(client, since=seen["cursor"]) as again:
            missed = again.take(2)
            api.data(DELETE, {"id": second})
            live = again.next()
        assert seen["conversationId"] == first
        assert [(e["__typename"], e["conversationId"]) for e in missed] == [
            ("ConversationCreated", second),
            ("ConversationUpdated", first),
        ]
        assert missed[1]["conversation"] == {"title": "one, renamed", "systemPrompt": None}
        assert (live["__typename"], live["conversationId"]) == ("ConversationDeleted", second)


def test_an_expired_since_gives_one_reset_then_the_live_feed(make_app: AppFactory) -> None:
    with TestClient(make_app(event_retention_seconds=60)) as client:
        api = Api(client)
        with feed(client) as alice:
            start = decode_event_cursor(alice.next()["cursor"])
        # A cursor from two minutes ago: the events after it may have been purged.
        stale = EventCursor(start.key, start.at - timedelta(seconds=120))
        with feed(client, since=stale.encode()) as again:
            reset = again.next()
            created = api.create(ALICE)["id"]
            live = again.next()
        assert reset["__typename"] == "EventsReset"
        assert reset["missed"] is True
        assert decode_event_cursor(reset["cursor"]).at > stale.at
        assert (live["__typename"], live["conversationId"]) == ("ConversationCreated", created)


def test_a_malformed_since_is_bad_user_input(make_app: AppFactory) -> None:
    with (
        TestClient(make_app()) as client,
        client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws,
    ):
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert ws.receive_json() == {"type": "connection_ack"}
        for number, since in enumerate(("nonsense", "ZTox", "YzoxfDI=")):
            payload = {"query": FEED, "variables": {"since": since}}
            ws.send_json({"id": str(number), "type": "subscribe", "payload": payload})
            message = ws.receive_json()
            assert message["type"] == "next", message
            errors = message["payload"]["errors"]
            assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]
            assert ws.receive_json() == {"id": str(number), "type": "complete"}


def test_a_feed_counts_against_the_connections_operation_limit(make_app: AppFactory) -> None:
    with (
        TestClient(make_app(max_subscriptions_per_connection=1)) as client,
        feed(client) as first,
    ):
        assert first.next()["__typename"] == "EventsReset"
        payload = {"query": FEED, "variables": {"since": None}}
        first.ws.send_json({"id": "2", "type": "subscribe", "payload": payload})
        refused = first.ws.receive_json()
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
