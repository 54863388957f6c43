"""Executing plain fields without graphql-core's per-field machinery.

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

A whole object goes the same way when every field selected on it is plain: a leaf as
above, or an object or a list of objects (or leaves) read from an attribute whose own
selection is plain again. A page's `edges { cursor node { id title updatedAt } }` then
becomes one plan per request: a function that reads the attributes and builds the
response dicts, with no resolve info, path or awaitable checks per field. The plan is
made from graphql-core's own collected fields (so @skip/@include, aliases and fragments
are applied as before) and only where there is nothing else to honour: no arguments,
no directive other than @skip/@include, no @defer, no middleware, no interface or
union. A value the plan would not complete exactly as graphql-core does (a null where
the type forbids it, a value a scalar refuses, a failing `is_type_of`, anything raised)
abandons the plan for that object and graphql-core completes it from the start:
attribute reads have no side effects, so reading them twice changes nothing.

Plans hold nothing of an execution (no values, variables or context), so an operation's
plans are made once and shared by its later executions (those of the last
OPERATIONS_KEPT operations), wherever nothing could make them differ between two
executions: no directive anywhere in the operation or its fragments (@skip and @include
read variables, @defer changes what is collected) and no middleware. Other operations
make their plans once per execution.

graphql-core's executor keeps its own bound methods (`async_helpers`), a reference cycle:
every execution, with everything only it holds (collected fields, variables, the
context, the plans: about 150 objects a read), was garbage that only the cyclic
collector could free, and a read paid for it in collections (python -m bench.read_path;
tests/unit/test_execution_garbage.py). Here the helpers reach the executor through a
weak reference, so an execution is freed as soon as its result is.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from graphql import (
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfoHelpers,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from llamaql.api.plan_parts import (
    Abandon,
    Complete,
    ObjectPlan,
    Step,
    enum_names,
    null_or_abandon,
    operation_plans,
    plain_operation,
    reader,
    unchanged,
)

# Strawberry's resolver for a field with nothing but an attribute to read
# (schema_converter.from_resolver); it ignores the info and arguments it is given.
_PLAIN = "_get_basic_result"
_NOT_PLAIN = None
_Leaf = tuple[Callable[..., Any], GraphQLLeafType, bool] | None  # resolver, type, nullable
_CACHE_ATTRIBUTE = "_llamaql_plain_leaves"
_SKIP_INCLUDE = frozenset({"skip", "include"})
_SHARED_ATTRIBUTE = "_llamaql_shared_plans"
_UNSET: Any = object()


class PlainLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution with the fast path for plain leaf fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = _helpers_of(weakref.ref(self))

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

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._object_plan(return_type, field_details_list)
        if plan is not None:
            try:
                return plan(result)
            except Exception:  # Abandon, or anything a read or a scalar raised
                pass
        return super().collect_and_execute_subfields(
            return_type, field_details_list, path, result, position_context
        )

    def _object_plan(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> ObjectPlan | None:
        """The plan for an object's selection, looked up once per execution; like
        graphql-core's own memo, keyed by the field list's identity, kept alive with it.
        Made once per operation where the operation's plans are shared (`_shared`)."""
        plans: dict[tuple[str, int], tuple[FieldDetailsList, ObjectPlan | None]]
        plans = self.__dict__.setdefault("_llamaql_plans", {})
        key = (return_type.name, id(field_details_list))
        if key not in plans:
            plans[key] = (field_details_list, None)  # a recursive type meets itself: no plan
            shared = self._shared()
            if shared is None:
                plan = self._make_object_plan(return_type, field_details_list)
            else:
                nodes = (return_type.name, *(id(d.node) for d in field_details_list))
                if nodes not in shared:
                    shared[nodes] = None  # the same guard, for the operation's plans
                    shared[nodes] = self._make_object_plan(return_type, field_details_list)
                plan = shared[nodes]
            plans[key] = (field_details_list, plan)
        return plans[key][1]

    def _shared(self) -> dict[tuple[Any, ...], ObjectPlan | None] | None:
        """The plans every execution of this operation shares, by type and field nodes;
        None where they could differ between executions: a directive anywhere in the
        operation or its fragments (@skip/@include take variables, @defer changes the
        collected fields), or a middleware."""
        found: Any = self.__dict__.get(_SHARED_ATTRIBUTE, _UNSET)
        if found is _UNSET:
            found = None
            manager = self.middleware_manager
            if (manager is None or not manager.middlewares) and plain_operation(
                self.operation, self.fragment_definitions
            ):
                found = operation_plans(self.schema, self.operation)
            self.__dict__[_SHARED_ATTRIBUTE] = found
        shared: dict[tuple[Any, ...], ObjectPlan | None] | None = found
        return shared

    def _make_object_plan(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> ObjectPlan | None:
        manager = self.middleware_manager
        if manager is not None and manager.middlewares:
            return None
        grouped, defer_usages, forbidden = self.collect_subfields(return_type, field_details_list)
        if defer_usages or forbidden:
            return None
        steps: list[Step] = []
        for response_key, details in grouped.items():
            node = details[0].node
            plain = all(
                item.defer_usage is None
                and not item.node.arguments
                and all(d.name.value in _SKIP_INCLUDE for d in item.node.directives or ())
                for item in details
            )
            field = return_type.fields.get(node.name.value) if plain else None
            resolve = field.resolve if field is not None else None
            if field is None or field.args or getattr(resolve, "__name__", "") != _PLAIN:
                return None  # __typename and every resolver go through graphql-core
            complete = self._value_plan(field.type, details)
            if complete is None:
                return None
            steps.append((response_key, reader(field), complete, unchanged(field.type)))

        return ObjectPlan(tuple(steps))

    def _value_plan(self, kind: GraphQLOutputType, details: FieldDetailsList) -> Complete | None:
        nullable = not isinstance(kind, GraphQLNonNull)
        inner: Any = kind if nullable else kind.of_type  # type: ignore[union-attr]
        if is_leaf_type(inner):
            coerce = inner.coerce_output_value

            def leaf(value: Any) -> Any:
                if value is None:
                    return null_or_abandon(nullable)
                coerced = coerce(value)
                if coerced is Undefined or coerced is None:
                    raise Abandon
                return coerced

            enum = enum_names(inner)
            if enum is None:
                return leaf
            wrapped, names = enum

            def member(value: Any) -> Any:
                # A member's name by one lookup; anything else is coerced as above.
                if type(value) is wrapped:
                    name = names.get(id(value))
                    if name is not None:
                        return name
                return leaf(value)

            return member
        if isinstance(inner, GraphQLList):
            item = self._value_plan(inner.of_type, details)
            if item is None:
                return None

            def items(value: Any) -> Any:
                if value is None:
                    return null_or_abandon(nullable)
                if not isinstance(value, list | tuple):
                    raise Abandon  # graphql-core's iterable and async rules apply
                return [item(each) for each in value]

            return items
        if isinstance(inner, GraphQLObjectType):
            sub = self._object_plan(inner, details)
            if sub is None:
                return None
            is_type_of: Callable[[Any, Any], Any] | None = inner.is_type_of
            steps = sub.steps  # run here, not through sub: a call less per object

            def obj(value: Any) -> Any:
                if value is None:
                    return null_or_abandon(nullable)
                if is_type_of is not None and is_type_of(value, None) is not True:
                    raise Abandon
                result = {}
                for key, read, complete, same in steps:
                    item = read(value)
                    result[key] = item if type(item) is same else complete(item)
                return result

            return obj
        return None  # interfaces and unions resolve their type through graphql-core


def _helpers_of(executor: weakref.ref[PlainLeafExecutionContext]) -> GraphQLResolveInfoHelpers:
    """The executor's `async_helpers` without the cycle (see the module docstring): a
    resolver only calls them while its execution, and so the executor, is alive."""

    def live() -> PlainLeafExecutionContext:
        found = executor()
        if found is None:
            raise RuntimeError("async helpers used after their execution ended")
        return found

    def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        return live().gather_async_work(values)

    def track(values: Sequence[Any]) -> None:
        live().track_async_work(values)

    return GraphQLResolveInfoHelpers(gather=gather, track=track)
