"""search over GraphQL: hits, snippets, pages and refusals through the real app and SQLite."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.integration.api.conftest import ALICE, BOB, Api

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.repositories import UnitOfWorkFactory

SEARCH = """
query($query: String!, $first: Int, $after: String) {
  search(query: $query, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node {
      conversation { id title }
      message { id role text conversationId }
      snippet snippetParts { text highlighted }
    } }
  }
}
"""


async def _add(uow_factory: UnitOfWorkFactory, user: str, conversation_id: str, text: str) -> None:
    async with uow_factory() as uow:
        await uow.messages.add(
            user_id=uuid.UUID(user),
            conversation_id=uuid.UUID(conversation_id),
            kind=MessageKind.BOT,
            text=text,
            status=MessageStatus.COMPLETE,
        )
        await uow.commit()


def _say(api: Api, conversation: dict[str, Any], text: str, user: str = ALICE) -> None:
    uow_factory: Any = api.client.app.state.container.resolve("uow_factory")  # type: ignore[attr-defined]
    api.client.portal.call(_add, uow_factory, user, conversation["id"], text)  # type: ignore[union-attr]


def _search(api: Api, query: str, user: str = ALICE, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.data(SEARCH, {"query": query, **variables}, user=user)["search"]
    return result


def test_hits_carry_conversation_message_and_snippet(api: Api) -> None:
    conversation = api.create(title="Volcano trip")
    _say(api, conversation, "Etna erupted <script>alert(1)</script> last spring.")

    result = _search(api, "etna")

    assert result["totalCount"] == 1
    [edge] = result["edges"]
    node = edge["node"]
    assert node["conversation"] == {"id": conversation["id"], "title": "Volcano trip"}
    assert node["message"]["role"] == "ASSISTANT"
    assert node["message"]["conversationId"] == conversation["id"]
    # Plain text, never markup: what the user wrote comes back as written.
    assert node["snippet"] == "Etna erupted <script>alert(1)</script> last spring."
    assert node["snippetParts"][0] == {"text": "Etna", "highlighted": True}
    assert "".join(p["text"] for p in node["snippetParts"]) == node["snippet"]


def test_title_hits_have_no_message(api: Api) -> None:
    conversation = api.create(title="Volcano trip")

    [edge] = _search(api, "volc")["edges"]

    assert edge["node"]["conversation"]["id"] == conversation["id"]
    assert edge["node"]["message"] is None
    assert edge["node"]["snippetParts"] == [
        {"text": "Volcano", "highlighted": True},
        {"text": " trip", "highlighted": False},
    ]


def test_each_user_sees_only_their_own_hits(api: Api) -> None:
    mine = api.create(title="Glacier")
    theirs = api.create(BOB, title="Glacier")
    _say(api, theirs, "glacier ice is blue", user=BOB)

    alice_sees = _search(api, "glacier")
    bob_sees = _search(api, "glacier", user=BOB)

    assert [e["node"]["conversation"]["id"] for e in alice_sees["edges"]] == [mine["id"]]
    assert {e["node"]["conversation"]["id"] for e in bob_sees["edges"]} == {theirs["id"]}
    assert bob_sees["totalCount"] == 2


def test_pages_walk_every_hit_once_and_deleted_conversations_vanish(api: Api) -> None:
    conversation = api.create(title="Fjord")
    for i in range(4):
        _say(api, conversation, f"fjord note {i}")
    seen: list[str] = []
    after = None
    while True:
        page = _search(api, "fjord", first=2, after=after)
        assert page["totalCount"] == 5
        seen += [e["node"]["snippet"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == ["Fjord", *(f"fjord note {i}" for i in range(4))]

    api.data("mutation($id: ID!) { deleteConversation(id: $id) }", {"id": conversation["id"]})
    assert _search(api, "fjord") == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }


def test_renaming_updates_what_is_found(api: Api) -> None:
    conversation = api.create(title="Draft")
    api.data(
        'mutation($id: ID!) { updateConversation(id: $id, input: {title: "Final"}) { id } }',
        {"id": conversation["id"]},
    )
    assert _search(api, "draft")["totalCount"] == 0
    assert _search(api, "final")["totalCount"] == 1


@pytest.mark.parametrize(
    "query", ['"', "NEAR(a b)", "pen*", "-pen", "a OR b", "user_id:x", "'; --", "\\", "ペン"]
)
def test_query_syntax_is_never_an_error(api: Api, query: str) -> None:
    api.create(title="pen and ink")
    result = _search(api, query)
    assert result["totalCount"] == len(result["edges"])


@pytest.mark.parametrize(
    "variables",
    [
        {"query": ""},
        {"query": "   "},
        {"query": "x" * 201},
        {"query": "x", "first": 0},
        {"query": "x", "first": 101},
        {"query": "x", "after": "not a cursor"},
        {"query": "x", "after": ""},
    ],
)
def test_bad_arguments_are_bad_user_input(api: Api, variables: dict[str, Any]) -> None:
    assert api.codes(SEARCH, variables) == ["BAD_USER_INPUT"]


def test_search_needs_a_user(api: Api) -> None:
    assert api.codes(SEARCH, {"query": "x"}, user=None) == ["UNAUTHENTICATED"]
