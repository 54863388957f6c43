"""The parts of api/execution.py's plans that hold nothing of an execution: what an
object's plan is, how a plain field is read and when its value needs no serializing,
enum names by member, and where an operation's shared plans are kept (the last
OPERATIONS_KEPT operations, for operations with no directive anywhere)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from enum import EnumMeta
from operator import attrgetter
from typing import Any

from graphql import (
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
)
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.field import StrawberryField

Complete = Callable[[Any], Any]  # a plan: a value read from an attribute -> its result
DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF  # a GraphQL field's StrawberryField
OPERATIONS_ATTRIBUTE = "_llamaql_operation_plans"
OPERATIONS_KEPT = 256  # as many as the document cache keeps (api/schema.py)


Step = tuple[str, Callable[[Any], Any], Complete, type]  # key, read, complete, unchanged


class ObjectPlan:
    """An object's plan: for each response key, read the attribute and complete it."""

    __slots__ = ("steps",)

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps = steps

    def __call__(self, source: Any) -> dict[str, Any]:
        result = {}
        for key, read, complete, same in self.steps:
            value = read(source)
            # A str for String or ID (a bool for Boolean) is its own serialized value.
            result[key] = value if type(value) is same else complete(value)
        return result


class Never:
    """No value is of this type: a leaf that is always serialized."""


def enum_names(kind: GraphQLLeafType) -> tuple[type, dict[int, str]] | None:
    """For a Strawberry enum, its Python class and each member's name by the member's
    identity (an Enum's hash is a Python call), looked up once here: Strawberry's
    coercion compares the member's value with each of the type's values on every call
    (enum properties, Python calls), and answers the first name whose value matches, as
    this does. None for any other leaf: its coercion is left to it."""
    wrapped = getattr(kind, "wrapped_cls", None)
    if not isinstance(kind, CustomGraphQLEnumType) or not isinstance(wrapped, EnumMeta):
        return None
    names: dict[int, str] = {}
    member: Any
    for member in wrapped:
        for name, value in kind.values.items():
            if member.value == value.value:
                names[id(member)] = name
                break
    return wrapped, names


def reader(field: GraphQLField) -> Callable[[Any], Any]:
    """How a plain field's value is read: Strawberry's `_get_basic_result` calls
    `StrawberryField.get_result`, which, with no resolver, is `default_resolver(source,
    python_name)`; with the default `getattr`, that is one attribute read."""
    definition = (field.extensions or {}).get(DEFINITION)
    if (
        isinstance(definition, StrawberryField)
        and definition.base_resolver is None
        and definition.default_resolver is getattr
    ):
        return attrgetter(definition.python_name)
    resolve: Any = field.resolve
    return lambda source: resolve(source, None)


def unchanged(kind: GraphQLOutputType) -> type:
    """The Python type whose values a leaf serializes as themselves (graphql-core's
    serialize_string and serialize_id return a str as it is, serialize_boolean a bool)."""
    inner = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
    if inner is GraphQLString or inner is GraphQLID:
        return str
    if inner is GraphQLBoolean:
        return bool
    return Never


def operation_plans(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> dict[tuple[Any, ...], ObjectPlan | None]:
    """The shared plans of `operation`, kept for the last OPERATIONS_KEPT operations.

    Keyed by the node's identity, and each entry holds its node, so that the identity is
    not reused while the entry lives. Plans are keyed by the identity of field nodes of
    the operation's document: while the operation executes, its document (fragments
    included) is alive, and it is the same document each time."""
    kept: OrderedDict[int, tuple[OperationDefinitionNode, dict[tuple[Any, ...], Any]]]
    kept = schema.__dict__.setdefault(OPERATIONS_ATTRIBUTE, OrderedDict())
    entry = kept.get(id(operation))
    if entry is None or entry[0] is not operation:
        entry = kept[id(operation)] = (operation, {})
        if len(kept) > OPERATIONS_KEPT:
            kept.popitem(last=False)
    else:
        kept.move_to_end(id(operation))
    return entry[1]


def plain_operation(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> bool:
    """Whether no selection of the operation or of its document's fragments carries a
    directive (nor a fragment variables or arguments)."""
    if any(fragment.variable_definitions for fragment in fragments.values()):
        return False
    sets = [operation.selection_set, *(f.selection_set for f in fragments.values())]
    while sets:
        for selection in sets.pop().selections:
            if selection.directives:
                return False
            if isinstance(selection, FragmentSpreadNode) and selection.arguments:
                return False
            inner = getattr(selection, "selection_set", None)
            if inner is not None:
                sets.append(inner)
    return True


def null_or_abandon(nullable: bool) -> None:
    if not nullable:
        raise Abandon
    return None


class Abandon(Exception):
    """The plan would not complete this value as graphql-core does."""
