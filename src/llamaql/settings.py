"""Typed settings, read once from the environment and `.env`, then passed in.

Every variable is `LLAMAQL_*`; the Rust proof of concept's `MODEL_FILE_NAME`,
`CONTEXT_SIZE` and `DATABASE_URL` are accepted as fallbacks.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode, SettingsConfigDict

from llamaql.settings_display import SECRET_FIELDS, describe_error, redact_url
from llamaql.settings_remote import RemoteEngineSettings

DEFAULT_MODEL_DIR = Path("models")
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer in plain text, without Markdown formatting."
)
MAX_CONTEXT_SIZE = 32768
MIN_JWT_SECRET_BYTES = 32


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable and the value."""


def default_replica_id() -> str:
    """host-pid-random: unique per process, and a log line's replica is findable."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


def _env(name: str, *fallbacks: str) -> AliasChoices:
    return AliasChoices(f"LLAMAQL_{name}", *fallbacks)


class Settings(RemoteEngineSettings):
    """Everything the server can be told; see the README's settings table (the remote
    engine's `LLAMAQL_ENGINE_*` are in settings_remote.py)."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, frozen=True
    )

    host: str = Field("127.0.0.1", validation_alias=_env("HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("PORT"))
    database_url: str = Field(
        "sqlite+aiosqlite:///./llamaql.db",
        validation_alias=_env("DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy async URL: sqlite+aiosqlite:///... or postgresql+asyncpg://...",
    )
    model_path: Path = Field(
        DEFAULT_MODEL_DIR / DEFAULT_MODEL_FILE,
        validation_alias=_env("MODEL_PATH", "MODEL_FILE_NAME"),
        description="GGUF file; a bare file name is looked up in ./models",
    )
    context_size: int | None = Field(
        None,
        ge=64,
        le=MAX_CONTEXT_SIZE,
        validation_alias=_env("CONTEXT_SIZE", "CONTEXT_SIZE"),
        description="Tokens of context; default: the model's trained context, capped at 32768",
    )
    n_gpu_layers: int | None = Field(
        None,
        ge=-1,
        validation_alias=_env("N_GPU_LAYERS"),
        description="Layers to offload; default: all with a GPU backend, else 0; -1 = all",
    )
    n_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        validation_alias=_env("N_THREADS"),
        description="CPU threads for llama.cpp; default: all usable cores",
    )
    n_batch: int = Field(512, ge=1, le=8192, validation_alias=_env("N_BATCH"))
    use_extra_bufts: bool = Field(
        False,
        validation_alias=_env("USE_EXTRA_BUFTS"),
        description="llama.cpp extra (repacking) buffer types; off: they crash on AMX CPUs",
    )
    parallel: int = Field(
        4,
        ge=1,
        le=256,
        validation_alias=_env("PARALLEL"),
        description="Replies decoded together in one batch; each holds a KV sequence of "
        "LLAMAQL_CONTEXT_SIZE tokens, so KV memory grows with it",
    )
    prompt_cache_mb: int = Field(
        256,
        ge=0,
        le=1024 * 1024,
        validation_alias=_env("PROMPT_CACHE_MB"),
        description="Host memory (MiB) for the KV state of conversations whose sequence "
        "went to another, so their next turn does not re-evaluate the history; 0 = off",
    )
    stream_interval_ms: int = Field(
        50,
        ge=0,
        le=5000,
        validation_alias=_env("STREAM_INTERVAL_MS"),
        description="After a reply's first text, at most one TokenDelta per this many "
        "milliseconds, carrying all the text since the previous one; 0 = as produced",
    )
    queue_size: int = Field(
        8,
        ge=1,
        le=10000,
        validation_alias=_env("QUEUE_SIZE"),
        description="Generation requests that may wait for the model before QUEUE_FULL",
    )
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, validation_alias=_env("SYSTEM_PROMPT"))
    checkpoint_seconds: float = Field(
        2.0,
        ge=0.0,
        le=3600.0,
        validation_alias=_env("CHECKPOINT_SECONDS"),
        description="While a reply streams, its text so far is saved this often, so a "
        "crash keeps most of it; 0 = only at the end",
    )
    replica_id: str = Field(
        default_factory=default_replica_id,
        min_length=1,
        max_length=64,
        pattern=r"^[\x21-\x7e]+$",
        validation_alias=_env("REPLICA_ID"),
        description="This server's name among replicas sharing one PostgreSQL; default: "
        "host-pid-random, new for every process",
    )
    heartbeat_seconds: float = Field(
        5.0,
        ge=0.1,
        le=300.0,
        validation_alias=_env("HEARTBEAT_SECONDS"),
        description="PostgreSQL: how often a replica marks its generating replies alive "
        "(and looks for replies of replicas that stopped)",
    )
    replica_dead_after_seconds: float = Field(
        30.0,
        ge=0.5,
        le=3600.0,
        validation_alias=_env("REPLICA_DEAD_AFTER_SECONDS"),
        description="PostgreSQL: a generating reply not marked alive for this long is "
        "FAILED/interrupted (its replica stopped); at least twice the heartbeat",
    )
    auto_title: bool = Field(
        True,
        validation_alias=_env("AUTO_TITLE"),
        description="After an untitled conversation's first reply, the model writes its "
        "title (in the background, never ahead of a waiting reply)",
    )
    max_message_chars: int = Field(
        32000,
        ge=1,
        validation_alias=_env("MAX_MESSAGE_CHARS"),
        description="Longest text accepted by sendMessage",
    )
    introspection: bool = Field(
        True,
        validation_alias=_env("INTROSPECTION"),
        description="Allow schema introspection (GraphiQL needs it); turn off in public",
    )
    max_query_depth: int = Field(12, ge=1, validation_alias=_env("MAX_QUERY_DEPTH"))
    max_aliases: int = Field(30, ge=1, validation_alias=_env("MAX_ALIASES"))
    max_query_tokens: int = Field(2000, ge=10, validation_alias=_env("MAX_QUERY_TOKENS"))
    max_query_cost: int = Field(
        20000,
        ge=100,
        validation_alias=_env("MAX_QUERY_COST"),
        description="Most list items one query may ask for: each `first` multiplied through "
        "the lists around it, summed over the document",
    )
    max_subscriptions_per_connection: int = Field(
        4, ge=1, validation_alias=_env("MAX_SUBSCRIPTIONS_PER_CONNECTION")
    )
    db_units_per_user: int = Field(
        4,
        ge=1,
        validation_alias=_env("DB_UNITS_PER_USER"),
        description="Database units of work one user may hold open at once (others wait)",
    )
    db_wait_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("DB_WAIT_SECONDS"),
        description="Longest wait for one of the user's units before QUEUE_FULL",
    )
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    auth: Literal["header", "jwt"] = Field(
        "header",
        validation_alias=_env("AUTH"),
        description="How a request names its user: header (X-User-ID, set by an "
        "authenticating proxy) or jwt (Authorization: Bearer, verified here)",
    )
    jwt_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("JWT_SECRET"),
        description="HS256 key for LLAMAQL_AUTH=jwt (at least 32 bytes)",
    )
    jwt_jwks_url: str | None = Field(
        None,
        validation_alias=_env("JWT_JWKS_URL"),
        description="The identity provider's JWKS (RS256/ES256 keys) for LLAMAQL_AUTH=jwt",
    )
    jwt_audience: str | None = Field(
        None, validation_alias=_env("JWT_AUDIENCE"), description="Required `aud` of tokens"
    )
    jwt_issuer: str | None = Field(
        None, validation_alias=_env("JWT_ISSUER"), description="Required `iss` of tokens"
    )
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        validation_alias=_env("ALLOWED_ORIGINS"),
        description="Comma-separated origins (https://host[:port]) whose pages may open a "
        "WebSocket besides the server's own; * allows any",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        validation_alias=_env("MAX_BODY_BYTES"),
        description="Largest HTTP request body and WebSocket message accepted",
    )
    metrics: bool = Field(
        True,
        validation_alias=_env("METRICS"),
        description="Serve Prometheus metrics at /metrics (operational figures only: no "
        "user, conversation or text); off = 404",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            parts = urlsplit(origin)
            if origin != "*" and (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path not in ("", "/")
                or parts.query
                or parts.username
            ):
                raise ValueError(f"{origin!r} is not an origin like https://example.com[:port]")
        return value

    @field_validator("jwt_jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # RFC 7518 3.2: an HS256 key must be at least as long as the hash (256 bits).
        if value is not None and len(value.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_JWT_SECRET_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _jwt_keys(self) -> Settings:
        if self.auth == "jwt" and (self.jwt_secret is None) == (self.jwt_jwks_url is None):
            raise ValueError(
                "LLAMAQL_AUTH=jwt needs exactly one of LLAMAQL_JWT_SECRET (HS256) "
                "or LLAMAQL_JWT_JWKS_URL (RS256/ES256)"
            )
        return self

    @model_validator(mode="after")
    def _heartbeat_below_dead_after(self) -> Settings:
        # One late beat (a pause, a slow statement) must not get a live reply marked.
        if self.replica_dead_after_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"LLAMAQL_REPLICA_DEAD_AFTER_SECONDS={self.replica_dead_after_seconds:g} must "
                f"be at least twice LLAMAQL_HEARTBEAT_SECONDS={self.heartbeat_seconds:g}"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("model_path")
    @classmethod
    def _bare_name_in_models(cls, value: Path) -> Path:
        if value.parent == Path(".") and not value.exists():
            return DEFAULT_MODEL_DIR / value
        return value


def load_settings(**overrides: Any) -> Settings:
    """Read settings; a bad value raises SettingsError naming the variable and value
    (never a secret, and a URL without its password)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [describe_error(error, Settings.model_fields) for error in exc.errors()]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def settings_summary(settings: Settings) -> Mapping[str, object]:
    """What the server may log at start-up: secrets masked, URLs without passwords."""
    summary = settings.model_dump()
    summary["database_url"] = redact_url(settings.database_url)
    return {k: ("<hidden>" if k in SECRET_FIELDS and v else v) for k, v in summary.items()}
