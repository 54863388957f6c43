"""SQL implementation of SearchRepository: SQLite FTS5 or PostgreSQL full-text search.

The index itself is built and kept in step with writes by the database (migration 0002):
on SQLite an FTS5 table over `search_entries`, filled by triggers on messages and
conversations; on PostgreSQL generated `search_vector` columns with GIN indexes. Every
statement here filters on the user. Terms reach the database only as quoted words, so
nothing a user types is read as query syntax.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import TextClause, Uuid, bindparam, text
from sqlalchemy import select as sa_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from llamaql.persistence.models import Conversation, Message
from llamaql.persistence.repositories.conversations import plain_rows
from llamaql.persistence.repositories.rows import conversation_from_columns, message_from_columns
from llamaql.persistence.repositories.snippets import (
    CLOSE,
    ELLIPSIS,
    OPEN,
    SNIPPET_WORDS,
    parse_marked,
    snippet_of,
)
from llamaql.ports.search import SearchHit, SnippetPart

_SQLITE_HITS = """
FROM search_fts JOIN search_entries AS e ON e.id = search_fts.rowid
WHERE search_fts MATCH :match AND e.user_id = :user_id
"""
# bm25 weights: 0 for the owner column (it only scopes), 1 for the text.
SQLITE_FIND = text(
    "SELECT e.conversation_id, e.message_id,"
    f" snippet(search_fts, 1, :open, :close, :ellipsis, {SNIPPET_WORDS})"
    + _SQLITE_HITS
    + "ORDER BY bm25(search_fts, 0.0, 1.0), e.id DESC LIMIT :limit OFFSET :offset"
)
SQLITE_COUNT = text("SELECT count(*)" + _SQLITE_HITS)

# ts_rank normalization 1 divides by the log of the length, like bm25 favouring the
# shorter of two texts with the same matches.
_PG_HITS = """
WITH q AS (SELECT to_tsquery('simple', :tsquery) AS query),
hits AS (
  SELECT m.conversation_id, m.id AS message_id, m.text AS body, m.created_at AS at,
         ts_rank(m.search_vector, q.query, 1) AS rank
  FROM messages AS m, q
  WHERE m.user_id = :user_id AND m.kind IN (2, 3) AND m.search_vector @@ q.query
  UNION ALL
  SELECT c.id, NULL, c.title, c.created_at, ts_rank(c.search_vector, q.query, 1)
  FROM conversations AS c, q
  WHERE c.user_id = :user_id AND c.search_vector @@ q.query
)
"""
POSTGRES_FIND = text(
    _PG_HITS
    + """
SELECT conversation_id, message_id, body FROM hits
ORDER BY rank DESC, at DESC, coalesce(message_id, conversation_id) DESC
LIMIT :limit OFFSET :offset
"""
)
POSTGRES_COUNT = text(_PG_HITS + "SELECT count(*) FROM hits")


# The hits' rows, built once with bound parameters (see persistence/repositories/conversations.py).
# The hits' conversations and messages, as plain rows (like the pages: no ORM instances).
_CONVERSATIONS = sa_select(*Conversation.__table__.columns).where(  # type: ignore[attr-defined]
    col(Conversation.id).in_(bindparam("ids", expanding=True)),
    col(Conversation.user_id) == bindparam("user_id"),
)
_MESSAGES = sa_select(*Message.__table__.columns).where(  # type: ignore[attr-defined]
    col(Message.id).in_(bindparam("ids", expanding=True)),
    col(Message.user_id) == bindparam("user_id"),
)


def sqlite_match(user_id: uuid.UUID, terms: Sequence[str]) -> str:
    """An FTS5 query: the owner's rows whose text has every term as a word prefix."""
    words = " AND ".join(f'"{_quote_fts(term)}"*' for term in terms)
    return f'user_id : "{user_id.hex}" AND body : ({words})'


def postgres_tsquery(terms: Sequence[str]) -> str:
    """A to_tsquery text: every term as a prefix, each quoted as one lexeme."""
    return " & ".join(f"'{_quote_tsquery(term)}':*" for term in terms)


def _quote_fts(term: str) -> str:
    # Inside an FTS5 string a double quote is written twice; terms should hold none.
    return term.replace('"', '""')


def _quote_tsquery(term: str) -> str:
    # Inside a tsquery lexeme, backslash escapes and a quote is written twice.
    return term.replace("\\", "\\\\").replace("'", "''")


def _typed(statement: TextClause) -> TextClause:
    return statement.bindparams(bindparam("user_id", type_=Uuid()))


# Each statement with its user parameter typed, built once (bindparams() copies it).
_TYPED = {
    statement: _typed(statement)
    for statement in (SQLITE_FIND, SQLITE_COUNT, POSTGRES_FIND, POSTGRES_COUNT)
}


class SqlSearchRepository:
    """Search of one session; see services.ports.SearchRepository."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find(
        self, *, user_id: uuid.UUID, terms: Sequence[str], limit: int, offset: int
    ) -> Sequence[SearchHit]:
        if not terms:
            return []
        if self._sqlite:
            rows = await self._rows(
                SQLITE_FIND,
                user_id=user_id,
                match=sqlite_match(user_id, terms),
                open=OPEN,
                close=CLOSE,
                ellipsis=ELLIPSIS,
                limit=limit,
                offset=offset,
            )
            found = [_found(row, parse_marked(row[2])) for row in rows]
        else:
            rows = await self._rows(
                POSTGRES_FIND,
                user_id=user_id,
                tsquery=postgres_tsquery(terms),
                limit=limit,
                offset=offset,
            )
            found = [_found(row, snippet_of(row[2], terms)) for row in rows]
        return await self._hits(user_id, found)

    async def count(self, *, user_id: uuid.UUID, terms: Sequence[str]) -> int:
        if not terms:
            return 0
        if self._sqlite:
            rows = await self._rows(
                SQLITE_COUNT, user_id=user_id, match=sqlite_match(user_id, terms)
            )
        else:
            rows = await self._rows(
                POSTGRES_COUNT, user_id=user_id, tsquery=postgres_tsquery(terms)
            )
        return int(rows[0][0])

    @property
    def _sqlite(self) -> bool:
        return self._session.get_bind().dialect.name == "sqlite"

    async def _rows(self, statement: TextClause, **params: Any) -> Sequence[Any]:
        connection = await self._session.connection()
        result = await connection.execute(_TYPED[statement], params)
        return result.all()

    async def _hits(self, user_id: uuid.UUID, found: list[_Found]) -> list[SearchHit]:
        conversation_ids = {c for c, _, _ in found}
        message_ids = {m for _, m, _ in found if m is not None}
        connection = await plain_rows(self._session)
        by_id = {"ids": list(conversation_ids), "user_id": user_id}
        conversations = {
            c.id: c
            for c in (
                conversation_from_columns(row._mapping)
                for row in await connection.execute(_CONVERSATIONS, by_id)
            )
        }
        by_id = {"ids": list(message_ids), "user_id": user_id}
        messages = {
            m.id: m
            for m in (
                message_from_columns(row._mapping)
                for row in await connection.execute(_MESSAGES, by_id)
            )
        }
        hits: list[SearchHit] = []
        for conversation_id, message_id, snippet in found:
            conversation = conversations.get(conversation_id)
            message = messages.get(message_id) if message_id is not None else None
            if conversation is None or (message_id is not None and message is None):
                continue  # the index is updated in the same transaction; never expected
            hits.append(SearchHit(conversation, message, snippet))
        return hits


_Found = tuple[uuid.UUID, uuid.UUID | None, tuple[SnippetPart, ...]]


def _found(row: Any, snippet: tuple[SnippetPart, ...]) -> _Found:
    """(conversation id, message id or None, snippet) of a result row."""
    conversation_id, message_id = row[0], row[1]
    return (
        _as_uuid(conversation_id),
        None if message_id is None else _as_uuid(message_id),
        snippet,
    )


def _as_uuid(value: object) -> uuid.UUID:
    # SQLite hands back the stored hex text, PostgreSQL a UUID.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
