"""Plain-object plans (api/execution.py) answer exactly as graphql-core does: each
document is executed with the fast paths and again with graphql-core's own execution,
through the real app, and the two bodies must be equal."""

from __future__ import annotations

import uuid
from typing import Any
from unittest.mock import patch

import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from tests.integration.api.conftest import ALICE, Api

from llamaql.api.execution import PlainLeafExecutionContext
from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.repositories import UnitOfWorkFactory

DOCUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("{ conversations { totalCount edges { cursor node { id title updatedAt } } } }", {}),
    (
        "{ conversations(first: 2) { pageInfo { hasNextPage endCursor } "
        "edges { node { id systemPrompt createdAt options { temperature maxTokens } } } } }",
        {},
    ),
    (
        "query($skip: Boolean!, $keep: Boolean!) { conversations { edges { "
        "node { id title @skip(if: $skip) systemPrompt @include(if: $keep) } } } }",
        {"skip": True, "keep": False},
    ),
    (
        "query($skip: Boolean!, $keep: Boolean!) { conversations { edges { "
        "node { id title @skip(if: $skip) systemPrompt @include(if: $keep) } } } }",
        {"skip": False, "keep": True},
    ),
    (
        "{ conversations { edges { node { ...C t: title ... on Conversation { i: id } } "
        "cursor c2: cursor } } } fragment C on Conversation { id title }",
        {},
    ),
    ("{ conversations { __typename edges { __typename node { __typename id } } } }", {}),
    (
        "{ conversations { edges { node { id messages { totalCount edges { cursor } "
        "pageInfo { hasNextPage } } } } } }",
        {},
    ),
]


def _answers(api: Api, documents: list[tuple[str, dict[str, Any]]] = DOCUMENTS) -> list[Any]:
    return [api.post(query, variables) for query, variables in documents]


def _graphql_core_answers(api: Api, documents: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    with (
        patch.object(
            PlainLeafExecutionContext,
            "collect_and_execute_subfields",
            StrawberryGraphQLCoreExecutionContext.collect_and_execute_subfields,
        ),
        patch.object(
            PlainLeafExecutionContext,
            "execute_field",
            StrawberryGraphQLCoreExecutionContext.execute_field,
        ),
    ):
        return _answers(api, documents)


@pytest.fixture
def seeded(api: Api) -> Api:
    api.create(title="first", systemPrompt="be brief")
    api.create(title=None, systemPrompt=None, options={"temperature": 0.5, "maxTokens": 7})
    api.create(title="third")
    return api


def test_plans_answer_exactly_as_graphql_core_does(seeded: Api) -> None:
    fast = _answers(seeded)
    with (
        patch.object(
            PlainLeafExecutionContext,
            "collect_and_execute_subfields",
            StrawberryGraphQLCoreExecutionContext.collect_and_execute_subfields,
        ),
        patch.object(
            PlainLeafExecutionContext,
            "execute_field",
            StrawberryGraphQLCoreExecutionContext.execute_field,
        ),
    ):
        slow = _answers(seeded)
    assert fast == slow
    assert all("errors" not in body for body in fast), fast
    assert len(fast[0]["data"]["conversations"]["edges"]) == 3


def test_a_page_of_plain_objects_builds_no_resolve_info_below_its_root(seeded: Api) -> None:
    with patch.object(
        StrawberryGraphQLCoreExecutionContext,
        "build_resolve_info",
        autospec=True,
        side_effect=StrawberryGraphQLCoreExecutionContext.build_resolve_info,
    ) as built:
        seeded.data(DOCUMENTS[0][0])
    assert [call.args[2][0].name.value for call in built.call_args_list] == ["conversations"]


def _plans_made(api: Api, query: str, variables: dict[str, Any]) -> int:
    with patch.object(
        PlainLeafExecutionContext,
        "_make_object_plan",
        autospec=True,
        side_effect=PlainLeafExecutionContext._make_object_plan,
    ) as made:
        assert "errors" not in api.post(query, variables)
    return made.call_count


def test_an_operations_plans_are_made_once_and_answer_new_data(seeded: Api) -> None:
    query = DOCUMENTS[0][0]
    before = seeded.data(query)
    assert _plans_made(seeded, query, {}) == 0  # made by the request above
    seeded.create(title="fourth")
    after = seeded.data(query)
    assert after["conversations"]["totalCount"] == before["conversations"]["totalCount"] + 1
    titles = [edge["node"]["title"] for edge in after["conversations"]["edges"]]
    assert "fourth" in titles


def test_plans_behind_directives_are_made_for_each_execution(seeded: Api) -> None:
    query, variables = DOCUMENTS[2]
    assert _plans_made(seeded, query, variables) > 0
    assert _plans_made(seeded, query, variables) > 0  # @skip/@include read the variables
    skipped = seeded.data(query, {"skip": True, "keep": True})
    shown = seeded.data(query, {"skip": False, "keep": True})
    assert all("title" not in edge["node"] for edge in skipped["conversations"]["edges"])
    assert all("title" in edge["node"] for edge in shown["conversations"]["edges"])


async def _add_messages(uow_factory: UnitOfWorkFactory, conversation_id: str) -> None:
    async with uow_factory() as uow:
        for index, (kind, status) in enumerate(
            [
                (MessageKind.SYSTEM, MessageStatus.COMPLETE),
                (MessageKind.USER, MessageStatus.COMPLETE),
                (MessageKind.BOT, MessageStatus.CANCELLED),
                (MessageKind.BOT, MessageStatus.FAILED),
                (MessageKind.BOT, MessageStatus.GENERATING),
            ]
        ):
            await uow.messages.add(
                user_id=uuid.UUID(ALICE),
                conversation_id=uuid.UUID(conversation_id),
                kind=kind,
                text=f"m{index}",
                status=status,
            )
        await uow.commit()


def test_enum_leaves_answer_exactly_as_graphql_core_does(api: Api) -> None:
    conversation = api.create()
    uow_factory: Any = api.client.app.state.container.resolve("uow_factory")  # type: ignore[attr-defined]
    api.client.portal.call(_add_messages, uow_factory, conversation["id"])  # type: ignore[union-attr]
    query = (
        "query($id: ID!) { conversation(id: $id) { messages { edges { node "
        "{ id role status text r2: role } } } } }"
    )
    documents = [(query, {"id": conversation["id"]})]
    fast = _answers(api, documents)
    assert fast == _graphql_core_answers(api, documents)
    nodes = [edge["node"] for edge in fast[0]["data"]["conversation"]["messages"]["edges"]]
    assert [(node["role"], node["status"]) for node in nodes] == [
        ("SYSTEM", "COMPLETE"),
        ("USER", "COMPLETE"),
        ("ASSISTANT", "CANCELLED"),
        ("ASSISTANT", "FAILED"),
        ("ASSISTANT", "GENERATING"),
    ]
