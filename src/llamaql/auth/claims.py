"""What one source (headers, or a connection_init payload) says about the user."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from llamaql.ports.errors import UnauthenticatedError


@dataclass(frozen=True, slots=True)
class Claim:
    """A user id, or why there is none; `presented` tells "absent" from "bad".
    `expires_at` (epoch seconds) is when the credential stops being accepted, for
    credentials that expire (a bearer token: its `exp` plus the allowed clock skew)."""

    user_id: uuid.UUID | None
    error: str | None = None
    presented: bool = True
    expires_at: float | None = None

    @classmethod
    def missing(cls, message: str) -> Claim:
        return cls(user_id=None, error=message, presented=False)

    @classmethod
    def refused(cls, message: str) -> Claim:
        return cls(user_id=None, error=message)

    def require(self) -> uuid.UUID:
        if self.user_id is None:
            raise UnauthenticatedError(self.error or "no identity")
        return self.user_id


class Authenticator(Protocol):
    """Reads identities; never raises for a bad one (the Claim carries the reason)."""

    async def from_headers(self, headers: Mapping[str, str]) -> Claim:
        """From HTTP request headers (lookup is case-insensitive)."""
        ...

    async def from_params(self, params: Mapping[str, object] | None) -> Claim:
        """From a WebSocket connection_init payload."""
        ...


def usable_user_id(user_id: uuid.UUID, *, expires_at: float | None = None) -> Claim:
    """The nil UUID is nobody: a default value, never a real user."""
    if user_id.int == 0:
        return Claim.refused("the nil UUID 00000000-0000-0000-0000-000000000000 is not a user")
    return Claim(user_id=user_id, expires_at=expires_at)


def find_param(params: Mapping[str, object] | None, name: str) -> object:
    """A connection_init payload entry, its key matched case-insensitively."""
    for key, value in (params or {}).items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def connection_user(upgrade: Claim, payload: Claim) -> uuid.UUID:
    """A WebSocket's user: the upgrade request's identity wins (a proxy set it and cannot
    see inside frames); without one, the payload's. UnauthenticatedError otherwise."""
    if not upgrade.presented:
        return payload.require()
    user_id = upgrade.require()
    if payload.presented and payload.user_id != user_id:
        raise UnauthenticatedError(
            "the connection_init payload names another identity than the upgrade request"
        )
    return user_id


def connection_expiry(upgrade: Claim, payload: Claim) -> float | None:
    """When a socket's identity stops being valid: the earliest expiry among the
    credentials it presented (None when none of them expires, as with X-User-ID)."""
    expiries = [
        claim.expires_at
        for claim in (upgrade, payload)
        if claim.presented and claim.expires_at is not None
    ]
    return min(expiries) if expiries else None
