"""Kept documents and the plain-field fast path, through the real app: a document sent
again is neither parsed nor validated again, yet every answer is what it was without
the cache (its validation errors, syntax errors on both channels, null and enum
handling), and nothing of one user's reaches another."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import graphql
import pytest
from starlette.testclient import TestClient
from strawberry.schema import schema as strawberry_schema
from tests.integration.api.conftest import ALICE, BOB, Api, AppFactory

from llamaql.api.document_cache import DocumentCache

PAGE = "{ conversations { totalCount edges { node { id title systemPrompt updatedAt } } } }"


def _cache(client: TestClient) -> DocumentCache:
    route = next(r for r in client.app.routes if getattr(r, "path", "") == "/graphql")  # type: ignore[attr-defined]
    extension = next(
        e for e in route.endpoint.schema.extensions if getattr(e, "keywords", {}).get("cache")
    )
    cache: DocumentCache = extension.keywords["cache"]
    return cache


def test_a_document_sent_again_is_not_parsed_or_validated_again(
    make_app: AppFactory,
) -> None:
    with TestClient(make_app()) as client:
        api = Api(client)
        api.create(title="one")
        with (
            patch.object(strawberry_schema, "parse", wraps=graphql.parse) as parse,
            patch(
                "llamaql.api.document_cache.validate_document",
                wraps=strawberry_schema.validate_document,
            ) as validate,
        ):
            first = api.data(PAGE)
            again = api.data(PAGE)
        assert first == again
        assert first["conversations"]["totalCount"] == 1
        assert (parse.call_count, validate.call_count) == (1, 1)
        assert len(_cache(client)) >= 1


def test_a_kept_document_still_gets_its_validation_errors(api: Api) -> None:
    bad = "{ conversations { nope } }"
    for _ in range(3):
        body = api.post(bad)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
        assert "Cannot query field 'nope'" in body["errors"][0]["message"]


def test_syntax_errors_are_never_kept_and_still_reported(api: Api) -> None:
    for _ in range(2):
        body = api.post("{ conversations {")
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
        assert "Syntax Error" in body["errors"][0]["message"]


def test_a_syntax_error_on_a_socket_is_still_its_error(make_app: AppFactory) -> None:
    with (
        TestClient(make_app()) as client,
        client.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"], headers={"X-User-ID": ALICE}
        ) as ws,
    ):
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json() == {"type": "connection_ack"}
        for op in ("1", "2"):
            ws.send_json({"id": op, "type": "subscribe", "payload": {"query": "subscription {"}})
            message: dict[str, Any] = ws.receive_json()
            assert (message["id"], message["type"]) == (op, "error")
            assert "Syntax Error" in message["payload"][0]["message"]
            assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_the_same_document_gives_each_user_their_own_data(api: Api) -> None:
    api.create(user=ALICE, title="alice's")
    api.create(user=BOB, title="bob's")
    api.create(user=BOB, title="bob's too")
    for _ in range(2):
        alice = api.data(PAGE, user=ALICE)["conversations"]
        bob = api.data(PAGE, user=BOB)["conversations"]
        assert [e["node"]["title"] for e in alice["edges"]] == ["alice's"]
        assert sorted(e["node"]["title"] for e in bob["edges"]) == ["bob's", "bob's too"]


@pytest.mark.parametrize("title", [None, "a title"])
def test_plain_fields_answer_as_graphql_core_does(api: Api, title: str | None) -> None:
    created = api.create(title=title, systemPrompt=None)
    data = api.data(PAGE)["conversations"]["edges"][0]["node"]
    assert data == {
        "id": created["id"],
        "title": title,  # a null for a nullable field stays null
        "systemPrompt": None,
        "updatedAt": created["updatedAt"],  # the DateTime scalar's own text
    }
    # Enums serialize by name; an alias is still its own key.
    page = api.data(
        "query($id: ID!) { conversation(id: $id) { first: id model: title messages "
        "{ totalCount } } }",
        {"id": created["id"]},
    )["conversation"]
    assert page == {"first": created["id"], "model": title, "messages": {"totalCount": 0}}


def test_a_null_in_a_non_null_plain_field_is_still_an_error(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from llamaql.api.types import PageInfo

    with (
        TestClient(make_app()) as client,
        patch.object(PageInfo, "__init__", _page_info_with_null_has_next),
    ):
        body = Api(client).post("{ conversations { pageInfo { hasNextPage } } }")
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL"]
    assert body["errors"][0]["path"] == ["conversations", "pageInfo", "hasNextPage"]
    assert "Cannot return null for non-nullable field PageInfo.hasNextPage" in caplog.text


def _page_info_with_null_has_next(self: Any, has_next_page: bool, end_cursor: str | None) -> None:
    self.has_next_page = None
    self.end_cursor = end_cursor


def test_plain_leaf_fields_skip_graphql_cores_field_machinery(api: Api) -> None:
    api.create(title=None)
    # `messages` takes arguments, so no plan covers Conversation, its edge or the page
    # (test_plain_plans_api.py): their leaves still skip graphql-core one by one.
    node = "node { id title messages { totalCount } }"
    query = f"{{ conversations {{ totalCount edges {{ cursor {node} }} }} }}"
    with patch.object(
        strawberry_schema.StrawberryGraphQLCoreExecutionContext,
        "build_resolve_info",
        autospec=True,
        side_effect=strawberry_schema.StrawberryGraphQLCoreExecutionContext.build_resolve_info,
    ) as built:
        edges = api.data(query)["conversations"]["edges"]
    assert edges[0]["node"]["title"] is None
    names = sorted(call.args[2][0].name.value for call in built.call_args_list)
    # Only the resolvers and the object fields; totalCount, cursor, id, title are plain.
    assert names == ["conversations", "edges", "messages", "node"]


def test_the_cache_keeps_at_most_its_size() -> None:
    cache = DocumentCache(2)
    for text in ("{ a }", "{ b }", "{ c }"):
        cache.keep(text, graphql.parse(text))
    assert len(cache) == 2
    assert cache.document("{ a }") is None
    assert cache.document("{ c }") is not None
