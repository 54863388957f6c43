"""Executing plain leaf fields without graphql-core's per-field machinery.

Most fields of a response are plain attributes returning a scalar or an enum (`id`,
`title`, `text`, `cursor`, `hasNextPage`, ...). graphql-core builds a resolve info,
checks arguments, calls the resolver and dispatches on the type for each of them: about
two thirds of the execution time of a `conversations(first: 20)` page. For a field whose
resolver is Strawberry's plain attribute read (no resolver, permission or extension of
its own), without arguments, whose type is a scalar or an enum, this reads the attribute
and serializes it directly (a null stays null where the type allows it). Anything else,
and any value this path would not serialize the same way (a null for a non-null field,
a value the scalar refuses, an error), goes through graphql-core as before, so its
result and errors are graphql-core's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# Strawberry's resolver for a field with nothing but an attribute to read
# (schema_converter.from_resolver); it ignores the info and arguments it is given.
_PLAIN = "_get_basic_result"
_NOT_PLAIN = None
_Leaf = tuple[Callable[..., Any], GraphQLLeafType, bool] | None  # resolver, type, nullable
_CACHE_ATTRIBUTE = "_llamaql_plain_leaves"


class PlainLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution with the fast path for plain leaf fields."""

    def _plain_leaf(self, parent_type: GraphQLObjectType, field_name: str) -> _Leaf:
        """(resolver, leaf type) when `parent_type.field_name` may take the fast path;
        decided once per schema and field."""
        cache: dict[tuple[str, str], _Leaf] = self.schema.__dict__.setdefault(_CACHE_ATTRIBUTE, {})
        key = (parent_type.name, field_name)
        if key not in cache:
            cache[key] = _NOT_PLAIN
            field = parent_type.fields.get(field_name)
            resolve = field.resolve if field is not None else None
            if field is not None and not field.args and resolve is not None:
                nullable = not isinstance(field.type, GraphQLNonNull)
                kind = field.type if nullable else field.type.of_type
                if getattr(resolve, "__name__", "") == _PLAIN and is_leaf_type(kind):
                    cache[key] = (resolve, kind, nullable)
        return cache[key]

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        leaf = None
        manager = self.middleware_manager
        # Strawberry always passes a manager; it is empty unless an extension resolves.
        if (manager is None or not manager.middlewares) and not node.arguments:
            leaf = self._plain_leaf(parent_type, node.name.value)
        if leaf is not None:
            resolve, kind, nullable = leaf
            try:
                value = resolve(source, None)
                if value is None and nullable:
                    return None
                if value is None:  # graphql-core reports the null as its error
                    raise LookupError
                coerced = kind.coerce_output_value(value)
            except Exception:  # graphql-core reports it, below
                coerced = Undefined
            if coerced is not Undefined and coerced is not None:
                return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
