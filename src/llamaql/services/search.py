"""Search use case: one user's messages and conversation titles, best match first.

What a user types is never handed to the database as query syntax: it is cut into
words (letters and digits), and each word must begin a word of the text. Quotes,
`NEAR`, `*`, `-` and the like are just separators or plain words.
"""

from __future__ import annotations

import re
import uuid

from llamaql.ports.errors import BadInputError
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.search import SearchHit
from llamaql.ports.values import Page
from llamaql.services.conversations import check_page_size
from llamaql.services.ids import decode_search_cursor, encode_search_cursor

MAX_QUERY_CHARS = 200
_WORD = re.compile(r"[^\W_]+")


def search_terms(query: str) -> list[str]:
    """The words of a query, in order, without repeats (case is left to the index)."""
    return list(dict.fromkeys(_WORD.findall(query)))


class SearchService:
    """Full-text search over the requesting user's own conversations."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def search(
        self, user_id: uuid.UUID, query: str, *, first: int = 20, after: str | None = None
    ) -> Page[SearchHit]:
        """Hits best match first; a query with no words finds nothing."""
        limit = check_page_size(first)
        if not query.strip():
            raise BadInputError("query must not be empty")
        if len(query) > MAX_QUERY_CHARS:
            raise BadInputError(
                f"query must be at most {MAX_QUERY_CHARS} characters, got {len(query)}"
            )
        offset = decode_search_cursor(after) + 1 if after is not None else 0
        terms = search_terms(query)
        if not terms:
            return Page(edges=[], has_next_page=False, total_count=0)
        async with self._uow_factory() as uow:
            rows = list(
                await uow.search.find(user_id=user_id, terms=terms, limit=limit + 1, offset=offset)
            )
            total = await uow.search.count(user_id=user_id, terms=terms)
        edges = [(encode_search_cursor(offset + i), hit) for i, hit in enumerate(rows[:limit])]
        return Page(edges=edges, has_next_page=len(rows) > limit, total_count=total)
