"""GraphQL enums of the contract."""

from __future__ import annotations

from enum import Enum

import strawberry

from llamaql.ports.values import MessageKind


@strawberry.enum
class Role(Enum):
    SYSTEM = "SYSTEM"
    USER = "USER"
    ASSISTANT = "ASSISTANT"

    @classmethod
    def from_kind(cls, kind: int) -> Role:
        # A stored kind is an int, and MessageKind(kind) two Python calls per message; a
        # kind that is not one still raises MessageKind's ValueError.
        found = ROLE_OF_KIND.get(kind)
        return found if found is not None else ROLE_OF_KIND[MessageKind(kind)]


ROLE_OF_KIND: dict[int, Role] = {  # an IntEnum hashes and compares as its int; by kind
    MessageKind.SYSTEM: Role.SYSTEM,
    MessageKind.BOT: Role.ASSISTANT,
    MessageKind.USER: Role.USER,
}


@strawberry.enum
class MessageStatus(Enum):
    COMPLETE = "COMPLETE"
    GENERATING = "GENERATING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    @classmethod
    def of(cls, status: str) -> MessageStatus:
        """MessageStatus(status) for a stored status, by one dict lookup (the Enum call
        is two Python calls per message); an unknown one still raises its ValueError."""
        found = STATUS_OF_VALUE.get(status)
        return found if found is not None else cls(status)


STATUS_OF_VALUE = {status.value: status for status in MessageStatus}  # by stored value


@strawberry.enum(description="The error codes of both channels (extensions.code and events)")
class ErrorCode(Enum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    QUEUE_FULL = "QUEUE_FULL"
    CONTEXT_OVERFLOW = "CONTEXT_OVERFLOW"
    CONVERSATION_BUSY = "CONVERSATION_BUSY"
    ENGINE_ERROR = "ENGINE_ERROR"
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL = "INTERNAL"
