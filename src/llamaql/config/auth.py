"""Settings of who may call: how a request names its user (a proxy's header or a verified
JWT) and which other origins' pages may open a WebSocket."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from llamaql.config.base import EnvConfig

MIN_JWT_SECRET_BYTES = 32


class AuthConfig(EnvConfig):
    """`LLAMAQL_AUTH`, `LLAMAQL_JWT_*` and `LLAMAQL_ALLOWED_ORIGINS`."""

    auth: Literal["header", "jwt"] = Field(
        "header",
        validation_alias=AliasChoices("LLAMAQL_AUTH"),
        description="How a request names its user: header (X-User-ID, set by an "
        "authenticating proxy) or jwt (Authorization: Bearer, verified here)",
    )
    jwt_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("LLAMAQL_JWT_SECRET"),
        description="HS256 key for LLAMAQL_AUTH=jwt (at least 32 bytes)",
    )
    jwt_jwks_url: str | None = Field(
        None,
        validation_alias=AliasChoices("LLAMAQL_JWT_JWKS_URL"),
        description="The identity provider's JWKS (RS256/ES256 keys) for LLAMAQL_AUTH=jwt",
    )
    jwt_audience: str | None = Field(
        None,
        validation_alias=AliasChoices("LLAMAQL_JWT_AUDIENCE"),
        description="Required `aud` of tokens",
    )
    jwt_issuer: str | None = Field(
        None,
        validation_alias=AliasChoices("LLAMAQL_JWT_ISSUER"),
        description="Required `iss` of tokens",
    )
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        validation_alias=AliasChoices("LLAMAQL_ALLOWED_ORIGINS"),
        description="Comma-separated origins (https://host[:port]) whose pages may open a "
        "WebSocket besides the server's own; * allows any",
    )

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

    def check_key_source(self) -> None:
        """JWT mode verifies with exactly one kind of key (a rule across variables)."""
        if self.auth == "jwt" and (self.jwt_secret is None) == (self.jwt_jwks_url is None):
            raise ValueError(
                "LLAMAQL_AUTH=jwt needs exactly one of LLAMAQL_JWT_SECRET (HS256) "
                "or LLAMAQL_JWT_JWKS_URL (RS256/ES256)"
            )
