"""Settings of the GraphQL API: introspection, and the limits on what one document may ask
(depth, aliases, tokens, list items) and on subscriptions per WebSocket."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from llamaql.config.base import EnvConfig


class ApiConfig(EnvConfig):
    """`LLAMAQL_INTROSPECTION`, `LLAMAQL_MAX_QUERY_*`, `LLAMAQL_MAX_ALIASES` and
    `LLAMAQL_MAX_SUBSCRIPTIONS_PER_CONNECTION`: a query over a limit is refused."""

    introspection: bool = Field(
        True,
        validation_alias=AliasChoices("LLAMAQL_INTROSPECTION"),
        description="Allow schema introspection (GraphiQL needs it); turn off in public",
    )
    max_query_depth: int = Field(12, ge=1, validation_alias=AliasChoices("LLAMAQL_MAX_QUERY_DEPTH"))
    max_aliases: int = Field(30, ge=1, validation_alias=AliasChoices("LLAMAQL_MAX_ALIASES"))
    max_query_tokens: int = Field(
        2000, ge=10, validation_alias=AliasChoices("LLAMAQL_MAX_QUERY_TOKENS")
    )
    max_query_cost: int = Field(
        20000,
        ge=100,
        validation_alias=AliasChoices("LLAMAQL_MAX_QUERY_COST"),
        description="Most list items one query may ask for: each `first` multiplied through "
        "the lists around it, summed over the document",
    )
    max_subscriptions_per_connection: int = Field(
        4, ge=1, validation_alias=AliasChoices("LLAMAQL_MAX_SUBSCRIPTIONS_PER_CONNECTION")
    )
