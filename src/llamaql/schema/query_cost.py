"""A query cost limit: what a document may fan out to, weighed by its list sizes.

Depth, alias and token limits pass a document of 25 aliased `conversations(first: 100)
{ ... messages(first: 100) }`, which asks for 250,000 rows. The cost of a document is
the number of list items it could return: a field with `first` (literal or variable;
absent means the contract's default of 20) returns up to `first` items for each item
of the lists around it; a list without `first` (`siblingIds`) counts its most items.
Over the limit, the operation is refused before any resolver
runs, as BAD_USER_INPUT stating the cost and the limit.
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
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

from llamaql.services.branching import MAX_VERSIONS

DEFAULT_FIRST = 20  # the contract's default page size
PAGED_FIELDS = frozenset({"conversations", "messages", "search"})  # connections with `first`
BOUNDED_LISTS = {"siblingIds": MAX_VERSIONS}  # lists without `first`, by their most items


def _first(field: FieldNode, variables: Mapping[str, Any]) -> int | None:
    """The page size a field asks for; None for a field that returns no page."""
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return max(0, int(value.value))
        if isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            return max(0, given) if isinstance(given, int) else DEFAULT_FIRST
        return DEFAULT_FIRST
    name = field.name.value
    if name in BOUNDED_LISTS:
        return BOUNDED_LISTS[name]
    return DEFAULT_FIRST if name in PAGED_FIELDS else None


class _Coster:
    def __init__(self, document: DocumentNode, variables: Mapping[str, Any]) -> None:
        self._variables = variables
        self._fragments = {
            node.name.value: node
            for node in document.definitions
            if isinstance(node, FragmentDefinitionNode)
        }

    def cost(self, selections: SelectionSetNode | None, items: int, seen: frozenset[str]) -> int:
        """List items under `selections`, each of which is repeated `items` times."""
        total = 0
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                first = _first(selection, self._variables)
                inner = items if first is None else items * first
                if first is not None:
                    total += inner  # up to `first` items for each item around it
                total += self.cost(selection.selection_set, inner, seen)
            elif isinstance(selection, InlineFragmentNode):
                total += self.cost(selection.selection_set, items, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self._fragments.get(name)
                if fragment is not None and name not in seen:  # cycles are a validation error
                    total += self.cost(fragment.selection_set, items, seen | {name})
        return total


def document_cost(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any]
) -> int:
    """The cost of the operation that would run (the largest one when unnamed)."""
    coster = _Coster(document, variables)
    costs = [
        coster.cost(node.selection_set, 1, frozenset())
        for node in document.definitions
        if isinstance(node, OperationDefinitionNode)
        and (operation_name is None or (node.name and node.name.value == operation_name))
    ]
    return max(costs, default=0)


class QueryCostLimit(SchemaExtension):
    """Refuses an operation whose cost exceeds `max_cost` (see the module docstring)."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            cost = document_cost(document, context.operation_name, context.variables or {})
            if cost > self.max_cost:
                context.pre_execution_errors = [
                    *(context.pre_execution_errors or []),
                    GraphQLError(
                        f"the query could return {cost} list items, more than the limit of "
                        f"{self.max_cost}: ask for smaller pages (first) or fewer aliases"
                    ),
                ]
        yield
