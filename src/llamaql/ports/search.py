"""What search needs from persistence: the user's matches with their snippets (the SQL
implementation is persistence/repositories/search.py; a fake in tests/fakes)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llamaql.ports.values import Conversation, Message


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
