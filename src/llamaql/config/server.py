"""Settings of the HTTP server process: where it listens, what it logs, the size of a
request body and the time allowed for its headers, and whether /metrics is served."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator

from llamaql.config.base import EnvConfig

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ServerConfig(EnvConfig):
    """`LLAMAQL_HOST`, `LLAMAQL_PORT`, `LLAMAQL_LOG_LEVEL`, `LLAMAQL_METRICS`,
    `LLAMAQL_MAX_BODY_BYTES` and `LLAMAQL_HEADER_TIMEOUT_SECONDS`."""

    host: str = Field("127.0.0.1", validation_alias=AliasChoices("LLAMAQL_HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=AliasChoices("LLAMAQL_PORT"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("LLAMAQL_LOG_LEVEL"))
    metrics: bool = Field(
        True,
        validation_alias=AliasChoices("LLAMAQL_METRICS"),
        description="Serve Prometheus metrics at /metrics (operational figures only: no "
        "user, conversation or text); off = 404",
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

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level
