"""The Strawberry schema: types, inputs, enums, events and the Schema object."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from llamaql.schema import events, subscription
from llamaql.schema.errors import ErrorCodes, LlamaqlSchema
from llamaql.schema.mutation import Mutation
from llamaql.schema.query import Query
from llamaql.settings import Settings


def schema_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Limits from settings, as factories (Strawberry makes one instance per operation).

    ParserCache is left out on purpose: it breaks syntax errors on subscriptions.
    """
    extensions: list[Callable[[], SchemaExtension]] = [
        ErrorCodes,
        partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.max_aliases),
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return extensions


def build_schema(settings: Settings) -> LlamaqlSchema:
    """The schema with the limits the settings ask for."""
    return LlamaqlSchema(
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
        extensions=schema_extensions(settings),
    )
