"""Domain exceptions with the contract's error codes.

Services raise these; the GraphQL edge maps `code` to `extensions.code` (queries and
mutations) or to `MessageFailed.code` (subscriptions). Messages are safe to show
clients: they say what was wrong and with which value, never internals.
"""

from __future__ import annotations


class DomainError(Exception):
    """A failure the client caused or can act on; `code` is one of the contract's codes."""

    code = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.retryable = retryable


class UnauthenticatedError(DomainError):
    """The request does not name its user (missing or malformed X-User-ID)."""

    code = "UNAUTHENTICATED"


class BadInputError(DomainError):
    """An argument is out of range or malformed; the message names it."""

    code = "BAD_USER_INPUT"


class NotFoundError(DomainError):
    """The object does not exist or belongs to another user (indistinguishable)."""

    code = "NOT_FOUND"


class ConversationBusyError(DomainError):
    """The conversation already has a reply being generated."""

    code = "CONVERSATION_BUSY"

    def __init__(self, message: str = "the conversation already has a reply in progress") -> None:
        super().__init__(message, retryable=True)


class StorageBusyError(DomainError):
    """The database stayed locked past its wait (SQLite's one writer under a burst, a
    PostgreSQL serialization failure or deadlock): nothing was written; try again."""

    code = "QUEUE_FULL"

    def __init__(self) -> None:
        super().__init__(
            "the server is busy with other requests; try again shortly", retryable=True
        )


class ReplyLimitError(DomainError):
    """The user already has their most replies generating or queued (on every socket and
    replica together): nothing was written; one more fits once one of them ends."""

    code = "QUEUE_FULL"

    def __init__(self, most: int) -> None:
        replies = "reply" if most == 1 else "replies"
        super().__init__(
            f"you already have {most} {replies} generating or queued (the most per user); "
            "wait for one to finish",
            retryable=True,
        )


class DatabaseUnavailableError(DomainError):
    """The database could not be reached, or did not answer within
    LLAMAQL_DB_TIMEOUT_SECONDS (refused, reset, timed out, shutting down): the step was
    not done; try again once it is back."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str = "the database is unavailable; try again shortly") -> None:
        super().__init__(message, retryable=True)


class ForbiddenError(DomainError):
    """The caller is identified but may not do this (a model pull or delete by a user not
    in LLAMAQL_MODEL_ADMINS)."""

    code = "FORBIDDEN"
