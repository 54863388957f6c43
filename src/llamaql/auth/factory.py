"""The Authenticator that LLAMAQL_AUTH asks for (called by the composition root)."""

from __future__ import annotations

from llamaql.auth.bearer import JwtAuthenticator
from llamaql.auth.claims import Authenticator
from llamaql.auth.header import HeaderAuthenticator
from llamaql.config import AuthConfig


def create_authenticator(auth: AuthConfig) -> Authenticator:
    if auth.auth == "header":
        return HeaderAuthenticator()
    secret = auth.jwt_secret.get_secret_value() if auth.jwt_secret else None
    return JwtAuthenticator(
        secret=secret,
        jwks_url=auth.jwt_jwks_url,
        audience=auth.jwt_audience,
        issuer=auth.jwt_issuer,
    )
