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

from collections.abc import Mapping
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
    ListValueNode,
    NamedTypeNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.types.execution import ExecutionContext

from llamaql.api.plain_variables import coerced_as_given, plain_variables
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


_Factor = tuple[GraphQLField, FieldNode]  # a `first` that depends on the variables


class CostPlan:
    """The cost of one operation as a sum of products, made once per document.

    Each list field of the operation (through aliases and fragments) is one term: the
    product of its own page size and those of the lists around it. A page size given
    as a literal, left to its default, or fixed (`siblingIds`) is a number here; one
    given by a variable (anywhere in its value) is read from each request's coerced
    variables, the way `get_argument_values` reads it, so a cost that depends on the
    variables is still computed for each request."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, operation: Any) -> None:
        self.operation: OperationDefinitionNode = operation
        self._schema = schema
        self._fragments = {
            node.name.value: node
            for node in document.definitions
            if isinstance(node, FragmentDefinitionNode)
        }
        self._sizes: list[int] = []  # by factor: a fixed size, 0 for a variable one
        self.variable_sizes: list[tuple[int, _Factor]] = []
        self.terms: list[tuple[int, ...]] = []  # factor indexes, outermost first
        root = schema.get_root_type(operation.operation)
        self._collect(root, operation.selection_set, (), frozenset())
        self.fixed = None if self.variable_sizes else self.cost(VariableValues({}, {}))
        definitions = operation.variable_definitions or ()
        self.plain_variables = plain_variables(schema, definitions)

    def cost(self, variables: VariableValues) -> int:
        """The operation's cost with the request's coerced `variables`."""
        sizes = self._sizes
        if self.variable_sizes:
            sizes = list(sizes)
            for index, (field, node) in self.variable_sizes:
                sizes[index] = _first(field, node, variables)
        total = 0
        for term in self.terms:
            items = 1
            for index in term:
                items *= sizes[index]
            total += items
        return total

    def _type(self, condition: NamedTypeNode | None, parent: GraphQLNamedType | None) -> Any:
        return parent if condition is None else self._schema.get_type(condition.name.value)

    def _size(self, field: GraphQLField, node: FieldNode) -> int | None:
        """The factor index of a list field's page size; None for a field with no list."""
        if "first" not in field.args:
            bound = BOUNDED_LISTS.get(node.name.value)
            return None if bound is None else self._factor(bound)
        given = next((a for a in node.arguments or () if a.name.value == "first"), None)
        if given is not None and _has_variable(given.value):
            self.variable_sizes.append((len(self._sizes), (field, node)))
            return self._factor(0)
        return self._factor(_first(field, node, VariableValues({}, {})))

    def _factor(self, size: int) -> int:
        self._sizes.append(size)
        return len(self._sizes) - 1

    def _collect(
        self,
        parent: GraphQLNamedType | None,
        selections: SelectionSetNode | None,
        around: tuple[int, ...],
        seen: frozenset[str],
    ) -> None:
        """The terms of the list fields under `selections` of a `parent`, inside the
        lists whose factors are `around`."""
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                field = _field(parent, selection.name.value)
                if field is None:
                    continue
                size = self._size(field, selection)
                inner = around if size is None else (*around, size)
                if size is not None:
                    self.terms.append(inner)  # up to `first` items for each item around it
                named = get_named_type(field.type)
                self._collect(named, selection.selection_set, inner, seen)
            elif isinstance(selection, InlineFragmentNode):
                inline_type = self._type(selection.type_condition, parent)
                self._collect(inline_type, selection.selection_set, around, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self._fragments.get(name)
                if fragment is not None and name not in seen:  # cycles are a validation error
                    spread_type = self._type(fragment.type_condition, parent)
                    self._collect(spread_type, fragment.selection_set, around, seen | {name})


def _first(field: GraphQLField, node: FieldNode, variables: VariableValues) -> int:
    """The page size a field with a `first` argument will be resolved with."""
    try:
        first = get_argument_values(field, node, variables).get("first")
    except GraphQLError:  # the field fails before its resolver: no more than a page
        first = None
    return DEFAULT_FIRST if first is None else max(0, int(first))


def _has_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_has_variable(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_has_variable(item.value) for item in value.fields)
    return False


def cost_plan(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    memo: dict[Any, Any] | None = None,
) -> CostPlan | None:
    """The cost plan of the operation that would run (None when none would: execution
    says why), kept in `memo` (the document's, api/document_cache.py) when given."""
    key = ("cost plan", operation_name)
    if memo is not None and key in memo:
        found: CostPlan | None = memo[key]
        return found
    operation = get_operation_ast(document, operation_name)
    plan = None if operation is None else CostPlan(schema, document, operation)
    if memo is not None:
        memo[key] = plan
    return plan


def plan_cost(
    schema: GraphQLSchema, plan: CostPlan, variables: Mapping[str, Any]
) -> int | list[GraphQLError]:
    """The cost of `plan`'s operation with the request's (raw) `variables`, or the
    errors that coercing them gives (graphql-core's, as execution would report them)."""
    definitions = plan.operation.variable_definitions
    if not definitions and plan.fixed is not None:
        return plan.fixed  # nothing to coerce (graphql-core ignores undeclared variables)
    coerced: VariableValues | list[GraphQLError] | None = None
    if plan.plain_variables is not None:
        coerced = coerced_as_given(plan.plain_variables, variables)
    if coerced is None:
        coerced = get_variable_values(
            schema, definitions or (), dict(variables), max_errors=MAX_VARIABLE_ERRORS
        )
    if isinstance(coerced, list):
        return coerced
    return plan.fixed if plan.fixed is not None else plan.cost(coerced)


def document_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any],
) -> int | list[GraphQLError]:
    """The cost of the operation that would run (0 when none would: execution says
    why), or the errors of its variables."""
    plan = cost_plan(schema, document, operation_name)
    return 0 if plan is None else plan_cost(schema, plan, variables)


class QueryCostLimit:
    """Refuses an operation whose cost exceeds `max_cost`, or whose variables do not
    coerce (see the module docstring). Run by the API's schema extension
    (api/operation.py) after validation: an invalid document is refused by its errors
    and not weighed."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def refusals(
        self, context: ExecutionContext, memo: dict[Any, Any] | None
    ) -> list[GraphQLError]:
        """The errors refusing this operation; `memo` keeps its document's cost plan."""
        document = context.graphql_document
        if document is None or context.pre_execution_errors:
            return []
        variables = context.variables or {}
        if not isinstance(variables, Mapping):  # not an object: execution refuses it
            return []
        schema = context.schema._schema
        plan = cost_plan(schema, document, context.operation_name, memo)
        cost = 0 if plan is None else plan_cost(schema, plan, variables)
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
