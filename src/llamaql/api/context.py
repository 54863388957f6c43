"""The GraphQL context: who is asking, and the container services come from.

Over WebSocket one context serves every operation on the connection (Strawberry builds
it once), so it holds only the user id and the container, never a database session:
services open their own short units of work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

import punq

from llamaql.api.loaders import MessagePages, SiblingIds
from llamaql.auth import Claim
from llamaql.ports.errors import UnauthenticatedError
from llamaql.services.conversations import ConversationService

T = TypeVar("T")


@dataclass
class Context:
    """Per HTTP request, or per WebSocket connection (shared by its operations)."""

    container: punq.Container
    user_id: uuid.UUID | None = None
    identity_error: str | None = None
    # What the request's headers said (on a WebSocket: the upgrade request's).
    request_claim: Claim = field(default_factory=lambda: Claim.missing("no identity"))
    # Strawberry stores the connection_init payload here (WebSocket only).
    connection_params: dict[str, Any] | None = field(default=None)
    # When a socket's credentials expire (epoch seconds; None: never). Set on connect.
    expires_at: float | None = None
    _message_pages: MessagePages | None = field(default=None, repr=False)
    _sibling_ids: SiblingIds | None = field(default=None, repr=False)

    @classmethod
    def for_claim(cls, container: punq.Container, claim: Claim) -> Context:
        """Identified by the request's headers; a missing or bad identity is kept as
        the error to report when a field needs the user."""
        return cls(
            container=container,
            user_id=claim.user_id,
            identity_error=claim.error,
            request_claim=claim,
        )

    def require_user(self) -> uuid.UUID:
        """The caller's id; every root field but introspection calls this first."""
        if self.user_id is None:
            raise UnauthenticatedError(self.identity_error or "the request names no user")
        return self.user_id

    def resolve(self, service: type[T]) -> T:
        """A service from the container (services are singletons; no per-request state)."""
        return self.container.resolve(service)

    @property
    def message_pages(self) -> MessagePages:
        """The loader every `Conversation.messages` of this context shares."""
        if self._message_pages is None:
            self._message_pages = MessagePages(self.resolve(ConversationService))
        return self._message_pages

    @property
    def sibling_ids(self) -> SiblingIds:
        """The loader every `Message.siblingIds` of this context shares."""
        if self._sibling_ids is None:
            self._sibling_ids = SiblingIds(self.resolve(ConversationService))
        return self._sibling_ids
