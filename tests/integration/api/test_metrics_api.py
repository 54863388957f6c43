"""/metrics on the real app: Prometheus text, sendMessage counted, off with a setting."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from tests.eventually import eventually_blocking
from tests.fakes.engine import FakeEngine
from tests.integration.api.conftest import ALICE, Api, AppFactory

TRANSPORT_WS = "graphql-transport-ws"
SEND = """subscription($id: ID!, $text: String!) { sendMessage(conversationId: $id, text: $text) {
  __typename ... on MessageCompleted { message { status } } ... on MessageFailed { code } } }"""
MISSING = "00000000-0000-4000-8000-000000000000"


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on /metrics, by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_ended(client: TestClient, outcome: str) -> float:
    return scrape(client)[("llamaql_chat_requests_total", (("outcome", outcome),))]


def send(client: TestClient, conversation: str, text: str) -> list[dict[str, Any]]:
    """sendMessage to its terminal event; the events' payloads."""
    with client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
        assert ws.receive_json() == {"type": "connection_ack"}
        variables = {"id": conversation, "text": text}
        ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": SEND, "variables": variables}}
        )
        events = []
        while (message := ws.receive_json())["type"] == "next":
            events.append(message["payload"]["data"]["sendMessage"])
        assert message == {"id": "1", "type": "complete"}
        return events


def test_metrics_show_the_engine_and_count_a_completed_reply(make_app: AppFactory) -> None:
    engine = FakeEngine()
    with TestClient(make_app(engine=engine)) as client:
        before = scrape(client)
        assert before[("llamaql_engine_up", ())] == 1
        assert before[("llamaql_queue_depth", ())] == 0
        assert before[("llamaql_active_replies", ())] == 0
        assert before[("llamaql_generated_tokens_total", ())] == 0
        conversation = Api(client).create(ALICE)["id"]
        secret = "my secret words"
        events = send(client, conversation, secret)
        assert events[-1] == {"__typename": "MessageCompleted", "message": {"status": "COMPLETE"}}
        after = scrape(client)
        page = client.get("/metrics").text
    assert after[("llamaql_generated_tokens_total", ())] == 4  # the fake's four pieces
    assert after[("llamaql_chat_requests_total", (("outcome", "COMPLETE"),))] == 1
    assert after[("llamaql_time_to_first_token_seconds_count", ())] == 1
    assert after[("llamaql_tokens_per_second_count", ())] == 1
    for private in (ALICE, conversation, secret):
        assert private not in page


def test_a_refused_request_is_counted_by_its_code(make_app: AppFactory) -> None:
    with TestClient(make_app(engine=FakeEngine())) as client:
        events = send(client, MISSING, "hello")
        assert events == [{"__typename": "MessageFailed", "code": "NOT_FOUND"}]
        assert requests_ended(client, "NOT_FOUND") == 1
        assert scrape(client)[("llamaql_generated_tokens_total", ())] == 0


def test_a_reply_whose_stream_closed_is_counted_when_it_ends(make_app: AppFactory) -> None:
    engine = FakeEngine()
    engine.script(paced=True)  # the reply waits, so the client leaves first
    with TestClient(make_app(engine=engine)) as client:
        conversation = Api(client).create(ALICE)["id"]
        with client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"X-User-ID": ALICE}})
            assert ws.receive_json() == {"type": "connection_ack"}
            variables = {"id": conversation, "text": "hi"}
            ws.send_json(
                {"id": "1", "type": "subscribe", "payload": {"query": SEND, "variables": variables}}
            )
            assert ws.receive_json()["type"] == "next"  # MessageQueued
            assert eventually_blocking(lambda: scrape(client)[("llamaql_active_replies", ())] == 1)
            ws.send_json({"id": "1", "type": "complete"})
        # The reply runs on without its stream: counted once it ends, as it ended.
        assert requests_ended(client, "CANCELLED") == requests_ended(client, "COMPLETE") == 0
        engine.handles[-1].allow(10)
        assert eventually_blocking(lambda: requests_ended(client, "COMPLETE") == 1)
        assert requests_ended(client, "CANCELLED") == 0


def test_without_an_engine_it_reports_the_engine_down(api: Api) -> None:
    samples = scrape(api.client)
    assert samples[("llamaql_engine_up", ())] == 0


def test_metrics_can_be_turned_off(make_app: AppFactory) -> None:
    with TestClient(make_app(engine=FakeEngine(), metrics=False)) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/health").status_code == 200
