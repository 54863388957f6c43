"""The Authenticator that LLAMAQL_AUTH asks for (called by the composition root)."""

from __future__ import annotations

from llamaql.auth.bearer import JwtAuthenticator
from llamaql.auth.claims import Authenticator
from llamaql.auth.header import HeaderAuthenticator
from llamaql.settings import Settings


def create_authenticator(settings: Settings) -> Authenticator:
    if settings.auth == "header":
        return HeaderAuthenticator()
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    return JwtAuthenticator(
        secret=secret,
        jwks_url=settings.jwt_jwks_url,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
