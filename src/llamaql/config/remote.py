"""Settings of the remote engine: an OpenAI-compatible server that answers instead of an
in-process model."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator

from llamaql.config.base import EnvConfig


class RemoteEngineConfig(EnvConfig):
    """`LLAMAQL_ENGINE_*`: unset URL = the in-process llama.cpp engine."""

    engine_url: str | None = Field(
        None,
        validation_alias=AliasChoices("LLAMAQL_ENGINE_URL"),
        description="An OpenAI-compatible server's API root (http://gpu-host:8080/v1): "
        "replies come from it and no model is loaded here",
    )
    engine_model: str | None = Field(
        None,
        validation_alias=AliasChoices("LLAMAQL_ENGINE_MODEL"),
        description="The remote engine's default model (conversations without one); "
        "default: the first it lists",
    )
    engine_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("LLAMAQL_ENGINE_API_KEY"),
        description="Sent to the remote engine as `Authorization: Bearer`; never logged",
    )
    engine_timeout_s: float = Field(
        120.0,
        gt=0.0,
        le=3600.0,
        validation_alias=AliasChoices("LLAMAQL_ENGINE_TIMEOUT_S"),
        description="Longest wait for the remote engine: to connect (at most 10 s), for "
        "a token counted, or between two pieces of a streamed reply",
    )

    @field_validator("engine_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL like http://gpu-host:8080/v1")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials: use LLAMAQL_ENGINE_API_KEY")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.strip().rstrip("/")
