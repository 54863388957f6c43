"""Typed settings, read once from the environment and `.env`, then passed in.

Every variable is `LLAMAQL_*`; the Rust proof of concept's `MODEL_FILE_NAME`,
`CONTEXT_SIZE` and `DATABASE_URL` are accepted as fallbacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from llamaql.settings_auth import AuthSettings
from llamaql.settings_display import SECRET_FIELDS, describe_error, redact_url
from llamaql.settings_limits import LimitSettings
from llamaql.settings_remote import RemoteEngineSettings
from llamaql.settings_replicas import ReplicaSettings

DEFAULT_MODEL_DIR = Path("models")
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer in plain text, without Markdown formatting."
)
MAX_CONTEXT_SIZE = 32768


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable and the value."""


def _env(name: str, *fallbacks: str) -> AliasChoices:
    return AliasChoices(f"LLAMAQL_{name}", *fallbacks)


class Settings(RemoteEngineSettings, ReplicaSettings, LimitSettings, AuthSettings):
    """Everything the server can be told; see the README's settings table. Groups of
    settings live in their own base classes: the remote engine's `LLAMAQL_ENGINE_*`
    (settings_remote.py), replicas (settings_replicas.py), limits (settings_limits.py)
    and auth and origins (settings_auth.py). The base listed last checks first: auth's
    "needs exactly one key" is reported before the replicas' heartbeat rule, as before."""

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
    kv_dir: Path = Field(
        Path(".kv"),
        validation_alias=_env("KV_DIR"),
        description="Folder for conversations' KV states on disk, so a conversation's next "
        "turn after a restart evaluates only its new tokens (relative: to the working "
        "directory)",
    )
    kv_disk_mb: int = Field(
        2048,
        ge=0,
        le=1024 * 1024 * 1024,
        validation_alias=_env("KV_DISK_MB"),
        description="Disk (MiB) the KV files in LLAMAQL_KV_DIR may take; least recently "
        "used go first; 0 = off",
    )
    stream_interval_ms: int = Field(
        50,
        ge=0,
        le=5000,
        validation_alias=_env("STREAM_INTERVAL_MS"),
        description="After a reply's first text, at most one TokenDelta per this many "
        "milliseconds, carrying all the text since the previous one (a stream slower than "
        "two tokens per interval waits for a second token or twice the interval); "
        "0 = as produced",
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
    auto_title: bool = Field(
        True,
        validation_alias=_env("AUTO_TITLE"),
        description="After an untitled conversation's first reply, the model writes its "
        "title (in the background, never ahead of a waiting reply)",
    )
    introspection: bool = Field(
        True,
        validation_alias=_env("INTROSPECTION"),
        description="Allow schema introspection (GraphiQL needs it); turn off in public",
    )
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    metrics: bool = Field(
        True,
        validation_alias=_env("METRICS"),
        description="Serve Prometheus metrics at /metrics (operational figures only: no "
        "user, conversation or text); off = 404",
    )

    @property
    def live_replies_per_user(self) -> int:
        """LLAMAQL_MAX_LIVE_REPLIES_PER_USER, or half the sequences (at least 1): one user
        never holds every sequence, so another user's reply starts without waiting."""
        if self.max_live_replies_per_user is not None:
            return self.max_live_replies_per_user
        return max(1, self.parallel // 2)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

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
