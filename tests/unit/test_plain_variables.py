"""Variables coerced as given (api/plain_variables.py) equal graphql-core's coercion, or
are left to it."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationDefinitionNode, build_schema, parse
from graphql.execution.values import VariableValues, get_variable_values

from llamaql.api.plain_variables import coerced_as_given, plain_variables

SCHEMA = build_schema(
    """
    enum Role { USER ASSISTANT }
    type Query { page(id: ID, first: Int, after: String, on: Boolean, score: Float,
                      role: Role): String }
    """
)
PLAIN = "query($id: ID!, $first: Int!, $after: String, $on: Boolean) { page(id: $id) }"


def _definitions(document: str) -> Any:
    operation = parse(document).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return operation.variable_definitions


@pytest.mark.parametrize(
    "given",
    [
        {"id": "a", "first": 20},
        {"id": "a", "first": 20, "after": "bTox", "on": True},
        {"id": "a", "first": -(2**31), "after": None, "on": None},
        {"id": "a", "first": 2**31 - 1, "unknown": [1, 2]},
    ],
)
def test_values_of_their_own_type_coerce_as_graphql_core_does(given: dict[str, Any]) -> None:
    definitions = _definitions(PLAIN)
    plain = plain_variables(SCHEMA, definitions)
    assert plain is not None
    ours = coerced_as_given(plain, given)
    theirs = get_variable_values(SCHEMA, definitions, dict(given))
    assert isinstance(ours, VariableValues)
    assert isinstance(theirs, VariableValues)
    assert ours.coerced == theirs.coerced
    assert list(ours.coerced) == list(theirs.coerced)
    assert _sources(ours) == _sources(theirs)


def _sources(values: VariableValues) -> dict[str, Any]:
    return {
        name: (source.signature.name, str(source.signature.type), source.value)
        for name, source in values.sources.items()
    }


@pytest.mark.parametrize(
    "given",
    [
        {"first": 20},  # a non-null variable left out: graphql-core's error
        {"id": None, "first": 20},
        {"id": 7, "first": 20},  # an int for an ID coerces to a str
        {"id": "a", "first": 20.0},  # a float for an Int coerces to an int
        {"id": "a", "first": True},
        {"id": "a", "first": "20"},
        {"id": "a", "first": 2**31},
        {"id": "a", "first": 20, "on": "yes"},
    ],
)
def test_any_other_value_is_left_to_graphql_core(given: dict[str, Any]) -> None:
    plain = plain_variables(SCHEMA, _definitions(PLAIN))
    assert plain is not None
    assert coerced_as_given(plain, given) is None


@pytest.mark.parametrize(
    "document",
    [
        "query($first: Int = 20) { page(first: $first) }",  # a default
        "query($score: Float) { page(score: $score) }",
        "query($role: Role) { page(role: $role) }",
        "query($ids: [ID!]) { page(id: $ids) }",
    ],
)
def test_definitions_other_than_plain_scalars_are_left_to_graphql_core(document: str) -> None:
    assert plain_variables(SCHEMA, _definitions(document)) is None
