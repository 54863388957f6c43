"""The GraphQL context: who is asking, and the container services come from.

Over WebSocket one context serves every operation on the connection (Strawberry builds
it once), so it holds only the user id and the container, never a database session:
services open their own short units of work.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import punq

from llamaql.services.errors import UnauthenticatedError

T = TypeVar("T")

USER_HEADER = "X-User-ID"


def parse_user_id(value: object) -> uuid.UUID:
    """The user id from a header or connection_init value; UnauthenticatedError if bad."""
    if value is None or value == "":
        raise UnauthenticatedError(f"{USER_HEADER} is missing: send {USER_HEADER}: <uuid>")
    if not isinstance(value, str):
        raise UnauthenticatedError(f"{USER_HEADER} must be a UUID string, got {value!r}")
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise UnauthenticatedError(f"{USER_HEADER} must be a UUID, got {value!r}") from None


def find_user_value(params: Mapping[str, Any] | None) -> object:
    """The X-User-ID entry of a connection_init payload, matched case-insensitively."""
    for key, value in (params or {}).items():
        if isinstance(key, str) and key.lower() == USER_HEADER.lower():
            return value
    return None


@dataclass
class Context:
    """Per HTTP request, or per WebSocket connection (shared by its operations)."""

    container: punq.Container
    user_id: uuid.UUID | None = None
    identity_error: str | None = None
    # Strawberry stores the connection_init payload here (WebSocket only).
    connection_params: dict[str, Any] | None = field(default=None)

    @classmethod
    def for_user_value(cls, container: punq.Container, value: object) -> Context:
        """Identify from a raw header value; a bad one is kept as the error to report."""
        try:
            return cls(container=container, user_id=parse_user_id(value))
        except UnauthenticatedError as exc:
            return cls(container=container, identity_error=exc.message)

    def require_user(self) -> uuid.UUID:
        """The caller's id; every root field but introspection calls this first."""
        if self.user_id is None:
            raise UnauthenticatedError(self.identity_error or f"{USER_HEADER} is missing")
        return self.user_id

    def resolve(self, service: type[T]) -> T:
        """A service from the container (services are singletons; no per-request state)."""
        return self.container.resolve(service)
