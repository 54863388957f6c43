"""Who is asking: the request's identity, by trusted header or verified bearer token.

One Authenticator, chosen by LLAMAQL_AUTH and built in the composition root, reads a
request's headers (HTTP, or a WebSocket's upgrade request) and a WebSocket's
connection_init payload. `connection_user` decides between the two on a socket: what
the upgrade request carried wins, and a payload naming someone else is refused.
"""

from __future__ import annotations

from llamaql.auth.claims import Authenticator, Claim, connection_expiry, connection_user
from llamaql.auth.factory import create_authenticator

__all__ = [
    "Authenticator",
    "Claim",
    "connection_expiry",
    "connection_user",
    "create_authenticator",
]
