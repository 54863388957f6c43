"""Nested `messages` of many conversations come from one batch per response (DataLoader).

Statements are counted with an SQLAlchemy event listener on the real SQLite file: a
response with 20 conversations and their messages must cost what a response with 2
costs. Without the loader each conversation would add its own page and count queries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from tests.integration.api.conftest import ALICE, BOB, Api

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.services.conversations import ConversationService

NESTED = """
query($first: Int) { conversations(first: $first) { edges { node {
  id messages(first: 3) { totalCount pageInfo { hasNextPage } edges { node { text } } }
} } } }
"""


class StatementCounter:
    """Counts SQL statements any engine in this process executes while it is on."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args: Any) -> None:
        self.count += 1


@pytest.fixture
def statements() -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(Engine, "before_cursor_execute", counter)
    yield counter
    event.remove(Engine, "before_cursor_execute", counter)


async def _add_messages(
    uow_factory: UnitOfWorkFactory, user: str, conversation_id: str, texts: list[str]
) -> None:
    async with uow_factory() as uow:
        for i, text in enumerate(texts):
            await uow.messages.add(
                user_id=uuid.UUID(user),
                conversation_id=uuid.UUID(conversation_id),
                kind=MessageKind.USER if i % 2 == 0 else MessageKind.BOT,
                text=text,
                status=MessageStatus.COMPLETE,
            )
        await uow.commit()


def _seed(api: Api, user: str, count: int) -> dict[str, list[str]]:
    """`count` conversations of `user`; the i-th has i % 5 messages (some have none)."""
    uow_factory: Any = api.client.app.state.container.resolve("uow_factory")  # type: ignore[attr-defined]
    texts: dict[str, list[str]] = {}
    for i in range(count):
        conversation = api.create(user=user)
        texts[conversation["id"]] = [f"{user[:4]}-{i}-{n}" for n in range(i % 5)]
        api.client.portal.call(  # type: ignore[union-attr]
            _add_messages, uow_factory, user, conversation["id"], texts[conversation["id"]]
        )
    return texts


def _statements_for(api: Api, counter: StatementCounter, first: int) -> tuple[int, Any]:
    before = counter.count
    data = api.data(NESTED, {"first": first})
    return counter.count - before, data


def test_twenty_conversations_cost_what_two_cost(api: Api, statements: StatementCounter) -> None:
    expected = _seed(api, ALICE, 20)
    _seed(api, BOB, 3)  # another user's rows must not leak into ALICE's pages
    few, _ = _statements_for(api, statements, 2)
    many, data = _statements_for(api, statements, 20)
    assert many == few, f"20 conversations ran {many} statements, 2 ran {few}"
    edges = data["conversations"]["edges"]
    assert len(edges) == 20
    for edge in edges:
        node = edge["node"]
        want = expected[node["id"]]
        assert node["messages"]["totalCount"] == len(want)
        assert [e["node"]["text"] for e in node["messages"]["edges"]] == want[:3]
        assert node["messages"]["pageInfo"]["hasNextPage"] is (len(want) > 3)


def test_aliases_with_other_pages_of_one_conversation(api: Api) -> None:
    texts = _seed(api, ALICE, 5)
    conversation_id = next(cid for cid, t in texts.items() if len(t) == 4)
    query = """
    query($id: ID!, $after: String) { conversation(id: $id) {
      a: messages(first: 2) { edges { node { text } } pageInfo { endCursor } }
      b: messages(first: 2, after: $after) { edges { node { text } } }
      c: messages(first: 1) { totalCount edges { node { text } } }
    } }
    """
    first = api.data(query, {"id": conversation_id})["conversation"]
    cursor = first["a"]["pageInfo"]["endCursor"]
    found = api.data(query, {"id": conversation_id, "after": cursor})["conversation"]
    assert [e["node"]["text"] for e in found["a"]["edges"]] == texts[conversation_id][:2]
    assert [e["node"]["text"] for e in found["b"]["edges"]] == texts[conversation_id][2:4]
    assert [e["node"]["text"] for e in found["c"]["edges"]] == texts[conversation_id][:1]
    assert found["c"]["totalCount"] == 4


def test_a_bad_page_size_in_one_field_is_bad_user_input(api: Api) -> None:
    _seed(api, ALICE, 2)
    codes = api.codes("{ conversations { edges { node { messages(first: 0) { totalCount } } } } }")
    assert set(codes) == {"BAD_USER_INPUT"}


PAGE_FIELDS = "totalCount pageInfo { hasNextPage endCursor } edges { cursor node { text } }"
READ_AHEAD = (
    "query($id: ID!, $n: Int) { conversation(id: $id) { id "
    f"messages(first: $n) {{ {PAGE_FIELDS} }} }} }}"
)
BEHIND_A_FRAGMENT = (
    "query($id: ID!, $n: Int) { conversation(id: $id) { id ...M } } "
    f"fragment M on Conversation {{ messages(first: $n) {{ {PAGE_FIELDS} }} }}"
)


def test_a_conversations_own_pages_come_with_it(api: Api) -> None:
    """`conversation(id) { messages }` reads the page in the conversation's unit of work
    (no loader batch); a page behind a fragment goes through the loader; both answer
    alike, and bad arguments and other users are refused as before."""
    texts = _seed(api, ALICE, 4)
    conversation_id = next(c for c, t in texts.items() if len(t) >= 3)
    loads = ConversationService.message_pages
    with patch.object(
        ConversationService, "message_pages", autospec=True, side_effect=loads
    ) as loaded:
        read_ahead = api.data(READ_AHEAD, {"id": conversation_id, "n": 2})
        assert loaded.call_count == 0
        through_loader = api.data(BEHIND_A_FRAGMENT, {"id": conversation_id, "n": 2})
        assert loaded.call_count == 1
    assert read_ahead == through_loader
    page = read_ahead["conversation"]["messages"]
    assert [e["node"]["text"] for e in page["edges"]] == texts[conversation_id][:2]
    assert (page["totalCount"], page["pageInfo"]["hasNextPage"]) == (3, True)
    assert api.codes(READ_AHEAD, {"id": conversation_id, "n": 0}) == ["BAD_USER_INPUT"]
    assert api.data(READ_AHEAD, {"id": conversation_id, "n": 2}, user=BOB)["conversation"] is None
