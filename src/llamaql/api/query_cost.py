"""A query cost limit: what a document may fan out to, weighed by its list sizes.

Depth, alias and token limits pass a document of 25 aliased `conversations(first: 100)
{ ... messages(first: 100) }`, which asks for 250,000 rows. The cost of a document is
the number of list items it could return: a field with a `first` argument returns up to
`first` items for each item of the lists around it; a list without `first`
(`siblingIds`) counts its most items. Aliases count each time they appear, and named
and inline fragments count where they are spread.

`first` is read the way graphql-core will execute it: the request's variables are
coerced against the operation's definitions by `get_variable_values` (the document's
defaults included, `($f: Int = 100)`), and each field's arguments come from
`get_argument_values` (the schema's defaults included), so the cost is that of what
would run. Variables that do not coerce (`"100"` or `100.5` for an `Int`) refuse the
operation with graphql-core's own messages before anything runs; `100.0` is the `Int`
100 there (JSON has one number type, as in graphql-js) and costs 100.
Over the limit, the operation is refused before any resolver runs, as BAD_USER_INPUT
stating the cost and the limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_operation_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension

from llamaql.ports.repositories import MAX_VERSIONS

DEFAULT_FIRST = 20  # the resolvers' page size for `first: null`
BOUNDED_LISTS = {"siblingIds": MAX_VERSIONS}  # lists without `first`, by their most items
MAX_VARIABLE_ERRORS = 50  # as graphql-core's execute reports at most


def _field(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    """The field `name` of `parent`; None for `__typename`, introspection, or a field
    the schema lacks (validation refuses that document)."""
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        field: GraphQLField | None = parent.fields.get(name)
        return field
    return None


class _Coster:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: VariableValues
    ) -> None:
        self._schema = schema
        self._variables = variables
        self._fragments = {
            node.name.value: node
            for node in document.definitions
            if isinstance(node, FragmentDefinitionNode)
        }

    def _first(self, field: GraphQLField, node: FieldNode) -> int | None:
        """The page size a field will be resolved with; None for a field with no list."""
        if "first" not in field.args:
            return BOUNDED_LISTS.get(node.name.value)
        try:
            first = get_argument_values(field, node, self._variables).get("first")
        except GraphQLError:  # the field fails before its resolver: no more than a page
            first = None
        return DEFAULT_FIRST if first is None else max(0, int(first))

    def _type(self, condition: NamedTypeNode | None, parent: GraphQLNamedType | None) -> Any:
        return parent if condition is None else self._schema.get_type(condition.name.value)

    def cost(
        self,
        parent: GraphQLNamedType | None,
        selections: SelectionSetNode | None,
        items: int,
        seen: frozenset[str],
    ) -> int:
        """List items under `selections` of a `parent`, each repeated `items` times."""
        total = 0
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                field = _field(parent, selection.name.value)
                if field is None:
                    continue
                first = self._first(field, selection)
                inner = items if first is None else items * first
                if first is not None:
                    total += inner  # up to `first` items for each item around it
                named = get_named_type(field.type)
                total += self.cost(named, selection.selection_set, inner, seen)
            elif isinstance(selection, InlineFragmentNode):
                inline_type = self._type(selection.type_condition, parent)
                total += self.cost(inline_type, selection.selection_set, items, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self._fragments.get(name)
                if fragment is not None and name not in seen:  # cycles are a validation error
                    spread_type = self._type(fragment.type_condition, parent)
                    total += self.cost(spread_type, fragment.selection_set, items, seen | {name})
        return total


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
) -> int | list[GraphQLError]:
    """The cost of `operation` with the request's (raw) `variables`, or the errors that
    coercing them gives (graphql-core's, as execution would report them)."""
    coerced = get_variable_values(
        schema,
        operation.variable_definitions or (),
        dict(variables),
        max_errors=MAX_VARIABLE_ERRORS,
    )
    if isinstance(coerced, list):
        return coerced
    root = schema.get_root_type(operation.operation)
    return _Coster(schema, document, coerced).cost(root, operation.selection_set, 1, frozenset())


def document_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any],
) -> int | list[GraphQLError]:
    """The cost of the operation that would run (0 when none would: execution says
    why), or the errors of its variables."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    return operation_cost(schema, document, operation, variables)


class QueryCostLimit(SchemaExtension):
    """Refuses an operation whose cost exceeds `max_cost`, or whose variables do not
    coerce (see the module docstring). Listed after ValidationCache: an invalid
    document is refused by its errors and not weighed."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def _refusals(self) -> list[GraphQLError]:
        context = self.execution_context
        document = context.graphql_document
        if document is None or context.pre_execution_errors:
            return []
        variables = context.variables or {}
        if not isinstance(variables, Mapping):  # not an object: execution refuses it
            return []
        cost = document_cost(context.schema._schema, document, context.operation_name, variables)
        if isinstance(cost, list):
            return cost
        if cost <= self.max_cost:
            return []
        return [
            GraphQLError(
                f"the query could return {cost} list items, more than the limit of "
                f"{self.max_cost}: ask for smaller pages (first) or fewer aliases"
            )
        ]

    def on_validate(self) -> Iterator[None]:
        refusals = self._refusals()
        if refusals:
            context = self.execution_context
            context.pre_execution_errors = [*(context.pre_execution_errors or []), *refusals]
        yield
