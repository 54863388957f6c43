"""What services need from persistence: user-scoped repositories behind a unit of work.

Services open one short unit of work per database step (never one per WebSocket
connection, never one held across a stream). The SQL implementation lives in
repositories/; unit tests use in-memory fakes of these protocols.
Every repository method takes the owning user and filters on it: another user's id
behaves exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from llamaql.models import Conversation, Message, MessageKind, MessageStatus


class ConversationRepository(Protocol):
    async def create(
        self,
        *,
        user_id: uuid.UUID,
        title: str | None,
        system_prompt: str | None,
        options: dict[str, Any],
    ) -> Conversation: ...

    async def get(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> Conversation | None: ...

    async def get_for_update(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> Conversation | None:
        """Like get, but locks the row until commit (PostgreSQL: FOR UPDATE)."""
        ...

    async def list_page(
        self, *, user_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[Conversation]:
        """Newest activity first: ordered by (updated_at desc, id desc), strictly after
        the (updated_at, id) key when given."""
        ...

    async def count(self, *, user_id: uuid.UUID) -> int: ...

    async def update(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, changes: dict[str, Any]
    ) -> Conversation | None:
        """Apply column changes and move updated_at; None when absent or not the user's."""
        ...

    async def touch(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        """Move updated_at to now (new activity)."""
        ...

    async def delete(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
        """Delete the conversation and its messages; False when absent or not the user's."""
        ...


class MessageRepository(Protocol):
    async def add(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        kind: MessageKind,
        text: str,
        status: MessageStatus,
    ) -> Message:
        """Append with the next seq of the conversation."""
        ...

    async def get(self, *, user_id: uuid.UUID, message_id: uuid.UUID) -> Message | None: ...

    async def list_page(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        limit: int,
        after_seq: int | None,
    ) -> Sequence[Message]:
        """Oldest first (seq asc), strictly after after_seq when given."""
        ...

    async def count(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> int: ...

    async def list_pages(
        self,
        *,
        user_id: uuid.UUID,
        after_seqs: Mapping[uuid.UUID, int | None],
        limit: int,
    ) -> dict[uuid.UUID, list[Message]]:
        """For each conversation (key), its first `limit` messages (seq asc) strictly
        after its after_seq (value), in one statement; the user's conversations only."""
        ...

    async def counts(
        self, *, user_id: uuid.UUID, conversation_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """How many messages each conversation has (0 when absent or not the user's)."""
        ...

    async def history(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, limit: int | None = None
    ) -> Sequence[Message]:
        """The COMPLETE and CANCELLED messages, oldest first: what a prompt is built from;
        with `limit`, only the newest `limit` of them."""
        ...

    async def has_generating(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> bool: ...

    async def checkpoint(self, *, user_id: uuid.UUID, message_id: uuid.UUID, text: str) -> bool:
        """Store a reply's text so far while it is still GENERATING; False otherwise."""
        ...

    async def finish(
        self,
        *,
        user_id: uuid.UUID,
        message_id: uuid.UUID,
        text: str,
        status: MessageStatus,
        finish_reason: str | None,
        usage: dict[str, Any],
        dropped_messages: int | None,
    ) -> Message | None:
        """Write an assistant message's final state once (usage keys are Message's
        usage columns)."""
        ...

    async def mark_interrupted(self) -> int:
        """All users: GENERATING -> FAILED with finish_reason 'interrupted' (start-up
        recovery after a crash). Returns how many were marked."""
        ...


@dataclass(frozen=True, slots=True)
class SnippetPart:
    """A piece of a search snippet; `highlighted` when it is a matched word."""

    text: str
    highlighted: bool


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message (or, with `message` None, a conversation's title) matching a search."""

    conversation: Conversation
    message: Message | None
    snippet: tuple[SnippetPart, ...]


class SearchRepository(Protocol):
    """Full-text search over the user's user and assistant messages and titles.

    `terms` are words (letters and digits only); a row matches when every term begins
    one of its words, case-insensitively.
    """

    async def find(
        self, *, user_id: uuid.UUID, terms: Sequence[str], limit: int, offset: int
    ) -> Sequence[SearchHit]:
        """Best match first; ties newest first."""
        ...

    async def count(self, *, user_id: uuid.UUID, terms: Sequence[str]) -> int: ...


class UnitOfWork(Protocol):
    """Rolls back on exit unless commit() was called."""

    conversations: ConversationRepository
    messages: MessageRepository
    search: SearchRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
