"""Settings that bound what one client may ask: message and body sizes, the time to send
request headers, GraphQL query shape, subscriptions per connection, live replies and
database units per user. A base class of `Settings`, kept apart so settings.py stays short."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings


class LimitSettings(BaseSettings):
    """`LLAMAQL_MAX_*` and `LLAMAQL_DB_*`: a client over one is refused, not served; and
    `LLAMAQL_SAVE_RETRY_SECONDS`, how long a reply waits for its database."""

    max_message_chars: int = Field(
        32000,
        ge=1,
        validation_alias=AliasChoices("LLAMAQL_MAX_MESSAGE_CHARS"),
        description="Longest text accepted by sendMessage",
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
    max_live_replies_per_user: int | None = Field(
        None,
        ge=1,
        le=10000,
        validation_alias=AliasChoices("LLAMAQL_MAX_LIVE_REPLIES_PER_USER"),
        description="Replies one user may have generating or queued at once, across sockets "
        "and replicas (one more is QUEUE_FULL); default: half of LLAMAQL_PARALLEL, at least 1",
    )
    db_units_per_user: int = Field(
        4,
        ge=1,
        validation_alias=AliasChoices("LLAMAQL_DB_UNITS_PER_USER"),
        description="Database units of work one user may hold open at once (others wait)",
    )
    db_wait_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=AliasChoices("LLAMAQL_DB_WAIT_SECONDS"),
        description="Longest wait for one of the user's units before QUEUE_FULL",
    )
    db_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600.0,
        validation_alias=AliasChoices("LLAMAQL_DB_TIMEOUT_SECONDS"),
        description="Longest wait for a database connection and for each statement; "
        "past it the request fails with SERVICE_UNAVAILABLE (retryable)",
    )
    save_retry_seconds: float = Field(
        300.0,
        ge=0,
        le=86400.0,
        validation_alias=AliasChoices("LLAMAQL_SAVE_RETRY_SECONDS"),
        description="How long a finished reply whose save failed (database unreachable) "
        "is kept in memory and its save retried",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        validation_alias=AliasChoices("LLAMAQL_MAX_BODY_BYTES"),
        description="Largest HTTP request body and WebSocket message accepted",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        validation_alias=AliasChoices("LLAMAQL_HEADER_TIMEOUT_SECONDS"),
        description="A connection that has not sent a request's complete headers this long "
        "after it opened (or after the first bytes of a later request) gets 408 and is closed",
    )
