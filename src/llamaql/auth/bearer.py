"""LLAMAQL_AUTH=jwt: `Authorization: Bearer <token>`, verified with PyJWT.

HS256 with a shared secret, or RS256/ES256 with the identity provider's keys from a
JWKS URL (PyJWKClient: the key set is cached, refetched when a token names an unknown
`kid`, at most once per cooldown so forged kids cannot hammer the provider). The user
id is `sub` when it is a UUID, else a UUIDv5 of issuer and subject.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from llamaql.auth.claims import Claim, find_param, usable_user_id

logger = logging.getLogger(__name__)

AUTHORIZATION = "Authorization"
MISSING = f"{AUTHORIZATION} is missing: send {AUTHORIZATION}: Bearer <token>"
HMAC_ALGORITHMS = ("HS256",)
KEY_SET_ALGORITHMS = ("RS256", "ES256")
LEEWAY_S = 10  # clock skew between the provider and this server
JWKS_TIMEOUT_S = 5.0
JWKS_LIFESPAN_S = 300.0
JWKS_COOLDOWN_S = 30.0


def subject_user_id(issuer: str, subject: str) -> uuid.UUID:
    """`sub` itself when it is a UUID; else UUIDv5(NAMESPACE_URL, JSON [iss, sub]), so the
    same subject at two issuers is two users, and the id is stable across restarts."""
    try:
        return uuid.UUID(subject)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([issuer, subject]))


def bearer_token(value: object) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None if it is not one."""
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class JwtAuthenticator:
    """Verifies bearer tokens: signature, expiry, and audience/issuer when configured."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        jwks_cooldown_s: float = JWKS_COOLDOWN_S,
        leeway_s: float = LEEWAY_S,
    ) -> None:
        if (secret is None) == (jwks_url is None):
            raise ValueError("JwtAuthenticator needs exactly one of secret or jwks_url")
        self._secret = secret
        self._jwks = (
            jwt.PyJWKClient(
                jwks_url,
                lifespan=JWKS_LIFESPAN_S,
                timeout=JWKS_TIMEOUT_S,
                cooldown_duration=jwks_cooldown_s,
            )
            if jwks_url is not None
            else None
        )
        self._audience = audience
        self._issuer = issuer
        self._leeway_s = leeway_s

    async def from_headers(self, headers: Mapping[str, str]) -> Claim:
        return await self._verify_value(headers.get(AUTHORIZATION.lower()))

    async def from_params(self, params: Mapping[str, object] | None) -> Claim:
        return await self._verify_value(find_param(params, AUTHORIZATION))

    async def _verify_value(self, value: object) -> Claim:
        if value is None or value == "":
            return Claim.missing(MISSING)
        token = bearer_token(value)
        if token is None:
            return Claim.refused(f"{AUTHORIZATION} must be 'Bearer <token>'")
        try:
            claims = await self._decode(token)
        except jwt.PyJWKClientConnectionError as exc:
            logger.warning("identity provider keys unavailable: %s", exc)
            return Claim.refused("the identity provider's keys are unavailable; retry later")
        except jwt.PyJWTError as exc:
            # PyJWT's messages name the failed check, never the token or the key.
            return Claim.refused(f"invalid bearer token: {exc}")
        user_id = subject_user_id(str(claims.get("iss", "")), claims["sub"])
        # Accepted until `exp` plus the leeway: a socket is closed then (web/expiry.py),
        # at the moment HTTP starts refusing the same token.
        return usable_user_id(user_id, expires_at=float(claims["exp"]) + self._leeway_s)

    async def _decode(self, token: str) -> dict[str, Any]:
        key: Any
        algorithms: tuple[str, ...]
        if self._jwks is not None:
            # PyJWKClient fetches over blocking urllib when the key is not cached.
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            algorithms = KEY_SET_ALGORITHMS
        else:
            key, algorithms = self._secret, HMAC_ALGORITHMS
        options: dict[str, Any] = {
            "require": ["exp", "sub"],
            "verify_aud": self._audience is not None,
        }
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway_s,
            options=options,  # type: ignore[arg-type]
        )
        return claims
