"""Conversations over GraphQL: CRUD and pagination through the real app and database."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.api.conftest import ALICE, BOB, Api

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.repositories import UnitOfWorkFactory

CONVERSATION = """
query($id: ID!) { conversation(id: $id) {
  id title systemPrompt createdAt updatedAt
  options { temperature topP topK minP repeatPenalty seed maxTokens stop }
  messages { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } }
} }
"""
LIST = """
query($first: Int, $after: String) { conversations(first: $first, after: $after) {
  totalCount edges { cursor node { id title } } pageInfo { hasNextPage endCursor }
} }
"""
MESSAGES = """
query($id: ID!, $first: Int, $after: String) { conversation(id: $id) {
  messages(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id conversationId role text status createdAt finishReason
      usage { promptTokens cachedPromptTokens completionTokens promptMs generationMs
              tokensPerSecond } } }
  }
} }
"""


def test_create_then_read_every_field(api: Api) -> None:
    options = {
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 40,
        "minP": 0.05,
        "repeatPenalty": 1.1,
        "seed": 7,
        "maxTokens": 128,
        "stop": ["END"],
    }
    created = api.create(title="Trip", systemPrompt="Be brief.", options=options)
    found = api.data(CONVERSATION, {"id": created["id"]})["conversation"]
    assert found["title"] == "Trip"
    assert found["systemPrompt"] == "Be brief."
    assert found["options"] == options
    assert found["createdAt"] == found["updatedAt"] == created["updatedAt"]
    assert found["messages"] == {
        "totalCount": 0,
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


def test_create_without_input_gives_defaults(api: Api) -> None:
    created = api.data("mutation { createConversation { id title options { temperature } } }")
    assert created["createConversation"]["title"] is None
    assert created["createConversation"]["options"] == {"temperature": None}


def test_update_changes_given_fields_and_moves_activity(api: Api) -> None:
    created = api.create(title="a", systemPrompt="keep", options={"topK": 5})
    updated = api.data(
        'mutation($id: ID!) { updateConversation(id: $id, input: {title: "b"}) {'
        " title systemPrompt updatedAt options { topK } } }",
        {"id": created["id"]},
    )["updateConversation"]
    assert (updated["title"], updated["systemPrompt"]) == ("b", "keep")
    assert updated["options"] == {"topK": 5}
    assert updated["updatedAt"] > created["updatedAt"]
    cleared = api.data(
        "mutation($id: ID!) { updateConversation(id: $id, input: {systemPrompt: null,"
        " options: {temperature: 1.5}}) { systemPrompt options { topK temperature } } }",
        {"id": created["id"]},
    )["updateConversation"]
    assert cleared == {"systemPrompt": None, "options": {"topK": None, "temperature": 1.5}}


def test_delete_removes_it(api: Api) -> None:
    created = api.create()
    deleted = api.data("mutation($id: ID!) { deleteConversation(id: $id) }", {"id": created["id"]})
    assert deleted == {"deleteConversation": created["id"]}
    assert api.data(CONVERSATION, {"id": created["id"]}) == {"conversation": None}
    assert api.data(LIST)["conversations"]["totalCount"] == 0


def test_pagination_walks_all_pages_newest_activity_first(api: Api) -> None:
    ids = [api.create(title=f"c{i}")["id"] for i in range(7)]
    # Updating the oldest makes it the newest activity.
    api.data(
        'mutation($id: ID!) { updateConversation(id: $id, input: {title: "c0!"}) { id } }',
        {"id": ids[0]},
    )
    expected = [ids[0], *reversed(ids[1:])]
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = api.data(LIST, {"first": 3, "after": after})["conversations"]
        pages += 1
        assert page["totalCount"] == 7
        assert [e["cursor"] for e in page["edges"]][-1] == page["pageInfo"]["endCursor"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert (seen, pages) == (expected, 3)


def test_default_page_is_twenty(api: Api) -> None:
    for _ in range(21):
        api.create()
    page = api.data("{ conversations { edges { cursor } pageInfo { hasNextPage } } }")
    assert len(page["conversations"]["edges"]) == 20
    assert page["conversations"]["pageInfo"]["hasNextPage"] is True


async def _add_messages(uow_factory: UnitOfWorkFactory, conversation_id: str, n: int) -> None:
    async with uow_factory() as uow:
        for i in range(n):
            await uow.messages.add(
                user_id=uuid.UUID(ALICE),
                conversation_id=uuid.UUID(conversation_id),
                kind=MessageKind.USER if i % 2 == 0 else MessageKind.BOT,
                text=f"m{i}",
                status=MessageStatus.COMPLETE,
            )
        await uow.commit()


def test_messages_are_a_connection_oldest_first(api: Api) -> None:
    conversation = api.create()
    uow_factory: Any = api.client.app.state.container.resolve("uow_factory")  # type: ignore[attr-defined]
    api.client.portal.call(_add_messages, uow_factory, conversation["id"], 5)  # type: ignore[union-attr]
    texts: list[str] = []
    after = None
    while True:
        page = api.data(MESSAGES, {"id": conversation["id"], "first": 2, "after": after})
        messages = page["conversation"]["messages"]
        assert messages["totalCount"] == 5
        texts += [edge["node"]["text"] for edge in messages["edges"]]
        if not messages["pageInfo"]["hasNextPage"]:
            break
        after = messages["pageInfo"]["endCursor"]
    assert texts == ["m0", "m1", "m2", "m3", "m4"]
    first = api.data(MESSAGES, {"id": conversation["id"], "first": 2})
    node = first["conversation"]["messages"]["edges"][1]["node"]
    assert node["conversationId"] == conversation["id"]
    assert (node["role"], node["status"], node["usage"]) == ("ASSISTANT", "COMPLETE", None)


PAGE_TWO_WAYS = """
fragment Page on MessageConnection {
  totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { id parentId conversationId role status text } }
}
query($id: ID!) {
  conversation(id: $id) { id messages(first: 3) { ...Page } }
  conversations(first: 5) { edges { node { id messages(first: 3) { ...Page } } } }
}
"""


def test_a_page_read_with_its_conversation_equals_the_loaders(api: Api) -> None:
    # `conversation(id)` reads its page with the conversation and answers it at once; a
    # conversations page's nodes read theirs through the loader: the same page both ways.
    conversation = api.create()
    api.create()  # another of Alice's, with no messages
    uow_factory: Any = api.client.app.state.container.resolve("uow_factory")  # type: ignore[attr-defined]
    api.client.portal.call(_add_messages, uow_factory, conversation["id"], 5)  # type: ignore[union-attr]
    data = api.data(PAGE_TWO_WAYS, {"id": conversation["id"]})
    ahead = data["conversation"]["messages"]
    (listed,) = [
        edge["node"]["messages"]
        for edge in data["conversations"]["edges"]
        if edge["node"]["id"] == conversation["id"]
    ]
    assert ahead == listed
    assert (ahead["totalCount"], ahead["pageInfo"]["hasNextPage"]) == (5, True)
    nodes = [edge["node"] for edge in ahead["edges"]]
    assert [node["text"] for node in nodes] == ["m0", "m1", "m2"]
    assert [node["role"] for node in nodes] == ["USER", "ASSISTANT", "USER"]
    assert [node["parentId"] for node in nodes] == [None, nodes[0]["id"], nodes[1]["id"]]
    assert {node["conversationId"] for node in nodes} == {conversation["id"]}
    theirs = api.data(PAGE_TWO_WAYS, {"id": conversation["id"]}, user=BOB)
    assert theirs["conversation"] is None
    assert theirs["conversations"]["edges"] == []
