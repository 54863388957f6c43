"""User B with user A's ids: every query and mutation behaves as if they did not exist."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.api.conftest import ALICE, BOB, Api

SNAPSHOT = """
query($id: ID!) { conversation(id: $id) { id title systemPrompt updatedAt
  options { temperature } messages { totalCount } } }
"""


@pytest.fixture
def alices(api: Api) -> dict[str, Any]:
    created = api.create(ALICE, title="secret", systemPrompt="hidden", options={"temperature": 1})
    snapshot: dict[str, Any] = api.data(SNAPSHOT, {"id": created["id"]}, user=ALICE)
    conversation: dict[str, Any] = snapshot["conversation"]
    return conversation


def _assert_unchanged(api: Api, before: dict[str, Any]) -> None:
    after = api.data(SNAPSHOT, {"id": before["id"]}, user=ALICE)["conversation"]
    assert after == before


def test_conversation_query_is_null(api: Api, alices: dict[str, Any]) -> None:
    assert api.data(SNAPSHOT, {"id": alices["id"]}, user=BOB) == {"conversation": None}
    _assert_unchanged(api, alices)


def test_conversations_list_is_empty(api: Api, alices: dict[str, Any]) -> None:
    listed = api.data("{ conversations { totalCount edges { node { id } } } }", user=BOB)
    assert listed == {"conversations": {"totalCount": 0, "edges": []}}
    mine = api.data("{ conversations { totalCount } }", user=ALICE)
    assert mine == {"conversations": {"totalCount": 1}}


def test_cursor_from_another_user_reveals_nothing(api: Api, alices: dict[str, Any]) -> None:
    api.create(ALICE)
    page = api.data("{ conversations(first: 1) { pageInfo { endCursor } } }", user=ALICE)
    cursor = page["conversations"]["pageInfo"]["endCursor"]
    listed = api.data(
        "query($a: String) { conversations(after: $a) { totalCount edges { node { id } } } }",
        {"a": cursor},
        user=BOB,
    )
    assert listed == {"conversations": {"totalCount": 0, "edges": []}}


@pytest.mark.parametrize(
    "mutation",
    [
        'mutation($id: ID!) { updateConversation(id: $id, input: {title: "mine now"}) { id } }',
        "mutation($id: ID!) { updateConversation(id: $id, input: {options: {seed: 1}}) { id } }",
        "mutation($id: ID!) { deleteConversation(id: $id) }",
    ],
)
def test_mutations_are_not_found(api: Api, alices: dict[str, Any], mutation: str) -> None:
    assert api.codes(mutation, {"id": alices["id"]}, user=BOB) == ["NOT_FOUND"]
    _assert_unchanged(api, alices)


def test_not_found_reads_the_same_as_for_a_missing_id(api: Api, alices: dict[str, Any]) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    delete = "mutation($id: ID!) { deleteConversation(id: $id) }"
    theirs = api.post(delete, {"id": alices["id"]}, user=BOB)["errors"][0]
    absent = api.post(delete, {"id": missing}, user=BOB)["errors"][0]
    assert theirs["message"].replace(alices["id"], "X") == absent["message"].replace(missing, "X")
