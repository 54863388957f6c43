"""document_cost: list items a document could return, through nesting, aliases and
fragments, with variables resolved the way graphql-core executes them."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLError, GraphQLSchema, parse

from llamaql.api.query_cost import DEFAULT_FIRST, cost_plan, document_cost, plan_cost
from llamaql.api.schema import build_schema
from llamaql.config import ApiConfig
from llamaql.ports.repositories import MAX_VERSIONS

NESTED = "{ conversations(first: 10) { edges { node { messages(first: 5) { totalCount } } } } }"
FRAGMENTS = """
query Q { a: conversations(first: 3) { ...F } b: conversations(first: 2) { ...F } }
fragment F on ConversationConnection {
  edges { node { ... on Conversation { messages(first: 4) { totalCount } } } }
}
"""
VARIABLE = "query($n: Int) { conversations(first: $n) { totalCount } }"
DEFAULTED = "query($n: Int = 100) { conversations(first: $n) { totalCount } }"
TWO_LEVELS = (
    "query($n: Int, $m: Int) { conversations(first: $n) "
    "{ edges { node { messages(first: $m) { totalCount } } } } }"
)


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(ApiConfig())._schema


def measure(
    schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None = None,
    name: str | None = None,
) -> int | list[GraphQLError]:
    return document_cost(schema, parse(query), name, variables or {})


def cost(
    schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None = None,
    name: str | None = None,
) -> int:
    measured = measure(schema, query, variables, name)
    assert isinstance(measured, int), measured
    return measured


def test_plain_fields_cost_nothing(schema: GraphQLSchema) -> None:
    assert cost(schema, '{ model { name } conversation(id: "1") { id title } }') == 0


def test_lists_multiply_through_nesting(schema: GraphQLSchema) -> None:
    assert cost(schema, NESTED) == 10 + 10 * 5


def test_absent_or_null_first_is_a_default_page(schema: GraphQLSchema) -> None:
    assert cost(schema, "{ conversations { totalCount } }") == DEFAULT_FIRST
    assert cost(schema, "{ conversations(first: null) { totalCount } }") == DEFAULT_FIRST
    assert cost(schema, VARIABLE) == DEFAULT_FIRST
    assert cost(schema, VARIABLE, {"n": None}) == DEFAULT_FIRST


def test_a_variable_counts_its_value(schema: GraphQLSchema) -> None:
    assert cost(schema, VARIABLE, {"n": 7}) == 7


def test_an_integral_float_counts_as_the_int_graphql_core_executes(
    schema: GraphQLSchema,
) -> None:
    # graphql-core coerces 100.0 to the Int 100 (JSON has one number type): the query
    # runs with first=100, so it costs 100, not a default page.
    assert cost(schema, VARIABLE, {"n": 100.0}) == 100
    assert cost(schema, TWO_LEVELS, {"n": 100.0, "m": 200.0}) == 100 + 100 * 200


def test_a_document_default_counts(schema: GraphQLSchema) -> None:
    assert cost(schema, DEFAULTED) == 100
    assert cost(schema, DEFAULTED, {"n": 3}) == 3
    assert cost(schema, DEFAULTED, {"n": None}) == DEFAULT_FIRST  # null, not the default


@pytest.mark.parametrize("value", ["100", 100.5, True, [100], {"n": 1}, 2**40])
def test_a_value_that_is_not_an_int_is_graphql_cores_error(
    schema: GraphQLSchema, value: object
) -> None:
    errors = measure(schema, VARIABLE, {"n": value})
    assert isinstance(errors, list)
    assert len(errors) == 1
    assert errors[0].message.startswith("Variable '$n' has invalid value")


def test_a_missing_required_variable_is_an_error(schema: GraphQLSchema) -> None:
    errors = measure(schema, "query($n: Int!) { conversations(first: $n) { totalCount } }")
    assert isinstance(errors, list)
    assert "to be provided" in errors[0].message


def test_fragments_and_aliases_count(schema: GraphQLSchema) -> None:
    assert cost(schema, FRAGMENTS, name="Q") == (3 + 3 * 4) + (2 + 2 * 4)


def test_variables_reach_into_fragments(schema: GraphQLSchema) -> None:
    query = """
    query($n: Int = 50, $m: Int) { a: conversations(first: $n) { ...F } b: conversations { ...F } }
    fragment F on ConversationConnection { edges { node { ...M } } }
    fragment M on Conversation { x: messages(first: $m) { totalCount } y: messages { totalCount } }
    """
    per_conversation = 6 + DEFAULT_FIRST
    assert cost(schema, query, {"m": 6.0}) == (50 + 50 * per_conversation) + (
        DEFAULT_FIRST + DEFAULT_FIRST * per_conversation
    )


def test_only_the_operation_that_runs_counts(schema: GraphQLSchema) -> None:
    query = "query Small { conversations(first: 1) { totalCount } } query Big { " + (
        "conversations(first: 100) { totalCount } }"
    )
    assert cost(schema, query, name="Small") == 1
    assert cost(schema, query, name="Big") == 100


def test_a_fragment_cycle_does_not_loop(schema: GraphQLSchema) -> None:
    query = (
        "{ conversations(first: 2) { ...A } } fragment A on ConversationConnection { ...B }"
        " fragment B on ConversationConnection { ...A }"
    )
    assert cost(schema, query) == 2


def test_sibling_ids_count_as_many_as_one_message_may_have(schema: GraphQLSchema) -> None:
    query = '{ conversation(id: "1") { messages(first: 10) { edges { node { siblingIds } } } } }'
    assert cost(schema, query) == 10 + 10 * MAX_VERSIONS


def test_search_hits_count_their_conversation_pages(schema: GraphQLSchema) -> None:
    query = (
        'query($f: Int = 30) { search(query: "x", first: $f) { edges { node '
        "{ conversation { messages(first: 2) { totalCount } } } } } }"
    )
    assert cost(schema, query) == 30 + 30 * 2


def test_a_kept_plan_still_weighs_each_requests_variables(schema: GraphQLSchema) -> None:
    document, memo = parse(TWO_LEVELS), dict[Any, Any]()
    plan = cost_plan(schema, document, None, memo)
    assert plan is not None
    assert plan.fixed is None  # both page sizes come from the variables
    assert cost_plan(schema, document, None, memo) is plan  # made once per document
    assert plan_cost(schema, plan, {"n": 2, "m": 3}) == 2 + 2 * 3
    assert plan_cost(schema, plan, {"n": 100, "m": 200}) == 100 + 100 * 200
    assert plan_cost(schema, plan, {}) == DEFAULT_FIRST + DEFAULT_FIRST * DEFAULT_FIRST
    errors = plan_cost(schema, plan, {"n": "100"})
    assert isinstance(errors, list)
    assert errors[0].message.startswith("Variable '$n' has invalid value")


def test_a_plan_without_variable_pages_is_one_number(schema: GraphQLSchema) -> None:
    query = "query($id: ID!) { conversation(id: $id) { messages(first: 7) { totalCount } } }"
    plan = cost_plan(schema, parse(query), None, {})
    assert plan is not None
    assert plan.fixed == 7
    assert plan_cost(schema, plan, {"id": "1"}) == 7
    errors = plan_cost(schema, plan, {})  # its variables are still coerced
    assert isinstance(errors, list)
    assert "to be provided" in errors[0].message


def test_plans_are_kept_per_operation_name(schema: GraphQLSchema) -> None:
    query = "query Small { conversations(first: 1) { totalCount } } query Big { " + (
        "conversations(first: 100) { totalCount } }"
    )
    document, memo = parse(query), dict[Any, Any]()
    small, big = (cost_plan(schema, document, name, memo) for name in ("Small", "Big"))
    assert small is not None
    assert big is not None
    assert (small.fixed, big.fixed) == (1, 100)
    assert cost_plan(schema, document, "Missing", memo) is None
