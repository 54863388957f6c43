"""Variables that coerce to themselves, coerced without graphql-core's machinery.

The query cost (api/query_cost.py) reads page sizes from the request's coerced
variables, and graphql-core coerces them again to execute: `get_variable_values` walks
each definition's type with a dozen calls per variable, about a hundred calls a read.
Most operations declare only built-in scalars without defaults (`$id: ID!`,
`$first: Int!`), and a JSON value of the matching Python type is its own coerced value:
a str for String and ID, a bool for Boolean, an int (not a bool) within 32 bits for
Int, and null for a nullable type; a nullable variable left out is left out. For those
this gives what `get_variable_values` gives; anything else (a default, another type, a
value of another Python type, a missing non-null variable) returns None, and the
caller coerces as before, so every refusal is still graphql-core's own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLBoolean,
    GraphQLError,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    VariableDefinitionNode,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource

# The Python type of the values each built-in scalar takes as they are.
_OWN_TYPES: dict[Any, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLBoolean: bool,
    GraphQLInt: int,
}

# (name, signature, the values' Python type, whether null is allowed) per variable.
PlainVariables = tuple[tuple[str, GraphQLVariableSignature, type, bool], ...]


def plain_variables(
    schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]
) -> PlainVariables | None:
    """The definitions, when every one is a built-in scalar without a default; None
    otherwise. Made once per operation (the schema and the definitions are fixed)."""
    found = []
    for definition in definitions:
        signature = get_variable_signature(schema, definition)
        if isinstance(signature, GraphQLError) or signature.default is not None:
            return None
        kind: Any = signature.type
        nullable = not isinstance(kind, GraphQLNonNull)
        own = _OWN_TYPES.get(kind if nullable else kind.of_type)
        if own is None:
            return None
        found.append((signature.name, signature, own, nullable))
    return tuple(found)


def coerced_as_given(variables: PlainVariables, given: Mapping[str, Any]) -> VariableValues | None:
    """The coerced `given` values, as `get_variable_values` would return them, when each
    is its own coerced value; None when one is not (coerce those as before)."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for name, signature, own, nullable in variables:
        value = given.get(name, Undefined)
        if value is Undefined:
            if not nullable:
                return None  # graphql-core's error
            sources[name] = VariableValueSource(signature)
            continue  # a nullable variable left out is left out
        if value is None:
            if not nullable:
                return None
        elif type(value) is not own or (
            type(value) is int and not GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT
        ):
            return None
        sources[name] = VariableValueSource(signature, value)
        coerced[name] = value
    return VariableValues(sources, coerced)
