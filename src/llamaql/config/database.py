"""Settings of the database: its URL, and how long and how much of it one user may hold."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator

from llamaql.config.base import EnvConfig


class DatabaseConfig(EnvConfig):
    """`LLAMAQL_DATABASE_URL` (or `DATABASE_URL`) and `LLAMAQL_DB_*`."""

    database_url: str = Field(
        "sqlite+aiosqlite:///./llamaql.db",
        validation_alias=AliasChoices("LLAMAQL_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy async URL: sqlite+aiosqlite:///... or postgresql+asyncpg://...",
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

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value
