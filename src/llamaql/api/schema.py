"""The Strawberry schema: types, inputs, enums, events and the Schema object."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from graphql import ASTValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types.execution import ExecutionContext

from llamaql.api import events, subscription
from llamaql.api.document_cache import DocumentCache
from llamaql.api.errors import LlamaqlSchema
from llamaql.api.execution import PlainLeafExecutionContext
from llamaql.api.mutation import Mutation
from llamaql.api.operation import ApiOperation, ApiRunner
from llamaql.api.query import Query
from llamaql.api.query_cost import QueryCostLimit
from llamaql.api.text_input import StorableStringLiterals
from llamaql.config import ApiConfig

DOCUMENT_CACHE_SIZE = 256


def schema_extensions(api: ApiConfig) -> list[Callable[[], SchemaExtension]]:
    """The API's limits, as one extension's factory (Strawberry makes one instance per
    operation; api/operation.py says what it does and why it is one).

    The depth and alias rules are what QueryDepthLimiter and MaxAliasesLimiter add, but
    their classes are built once here: those extensions build new ones per operation,
    which would make every cached rule set new. Parsing and validation were the largest
    costs of a repeated query (bench/results/README.md): the document cache keeps both,
    by the document's text, for this schema. Strawberry's ParserCache is left out on
    purpose: it breaks syntax errors on subscriptions.
    """
    rules: list[type[ASTValidationRule]] = [
        max_depth_rule(api.max_query_depth, None, None),
        max_aliases_rule(api.max_aliases),
        StorableStringLiterals,
    ]
    if not api.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [
        partial(
            ApiOperation,
            rules=tuple(rules),
            max_tokens=api.max_query_tokens,
            cache=DocumentCache(DOCUMENT_CACHE_SIZE),
            cost_limit=QueryCostLimit(max_cost=api.max_query_cost),
        )
    ]


class ApiSchema(LlamaqlSchema):
    """The API's schema: an operation whose one extension is ApiOperation (every
    operation, unless a schema directive adds Strawberry's) runs it through ApiRunner."""

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        api = ApiRunner.fits(extensions)
        if api is None:
            return super().create_extensions_runner(execution_context, extensions)
        return ApiRunner(execution_context, api)


def build_schema(api: ApiConfig) -> LlamaqlSchema:
    """The schema with the limits the API's settings ask for."""
    return ApiSchema(
        query=Query,
        mutation=Mutation,
        subscription=subscription.SUBSCRIPTION,
        # Listed so the events exist in the SDL before sendMessage uses them.
        types=[
            events.MessageQueued,
            events.TokenDelta,
            events.MessageCompleted,
            events.MessageFailed,
        ],
        extensions=schema_extensions(api),
        execution_context_class=PlainLeafExecutionContext,
    )
