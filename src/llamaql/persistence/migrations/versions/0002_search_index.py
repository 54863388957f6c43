"""Full-text search index over user and assistant messages and conversation titles.

SQLite: `search_entries` (one row per indexed text, with a stable integer key) and the
FTS5 table `search_fts` over it, both kept in step by triggers on messages and
conversations. PostgreSQL: a generated `search_vector` column with a GIN index on each
table. Both are filled for the rows that exist when the migration runs. None of it is in
the models (see llamaql.persistence.migrations.unmodelled); later batch migrations on SQLite that
recreate `messages` or `conversations` must recreate these triggers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Message kinds that are searched: 2 = assistant, 3 = user (not 1 = system).
SQLITE_UPGRADE = [
    """CREATE TABLE search_entries (
        id INTEGER PRIMARY KEY,
        user_id CHAR(32) NOT NULL,
        conversation_id CHAR(32) NOT NULL,
        message_id CHAR(32),
        body TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX ix_search_entries_message_id ON search_entries (message_id)",
    "CREATE INDEX ix_search_entries_conversation_id ON search_entries (conversation_id)",
    """INSERT INTO search_entries (user_id, conversation_id, message_id, body)
        SELECT user_id, id, NULL, title FROM conversations WHERE title IS NOT NULL""",
    """INSERT INTO search_entries (user_id, conversation_id, message_id, body)
        SELECT user_id, conversation_id, id, text FROM messages WHERE kind IN (2, 3)""",
    # The owner is an indexed column so that MATCH itself scopes to one user's rows.
    """CREATE VIRTUAL TABLE search_fts USING fts5(
        user_id, body, content='search_entries', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )""",
    "INSERT INTO search_fts (search_fts) VALUES ('rebuild')",
    """CREATE TRIGGER search_entries_insert AFTER INSERT ON search_entries BEGIN
        INSERT INTO search_fts (rowid, user_id, body) VALUES (new.id, new.user_id, new.body);
    END""",
    """CREATE TRIGGER search_entries_delete AFTER DELETE ON search_entries BEGIN
        INSERT INTO search_fts (search_fts, rowid, user_id, body)
            VALUES ('delete', old.id, old.user_id, old.body);
    END""",
    """CREATE TRIGGER search_entries_update AFTER UPDATE ON search_entries BEGIN
        INSERT INTO search_fts (search_fts, rowid, user_id, body)
            VALUES ('delete', old.id, old.user_id, old.body);
        INSERT INTO search_fts (rowid, user_id, body) VALUES (new.id, new.user_id, new.body);
    END""",
    """CREATE TRIGGER search_messages_insert AFTER INSERT ON messages
    WHEN new.kind IN (2, 3) BEGIN
        INSERT INTO search_entries (user_id, conversation_id, message_id, body)
            VALUES (new.user_id, new.conversation_id, new.id, new.text);
    END""",
    """CREATE TRIGGER search_messages_update AFTER UPDATE OF text ON messages
    WHEN old.text IS NOT new.text BEGIN
        UPDATE search_entries SET body = new.text WHERE message_id = old.id;
    END""",
    """CREATE TRIGGER search_messages_delete AFTER DELETE ON messages BEGIN
        DELETE FROM search_entries WHERE message_id = old.id;
    END""",
    """CREATE TRIGGER search_conversations_insert AFTER INSERT ON conversations
    WHEN new.title IS NOT NULL BEGIN
        INSERT INTO search_entries (user_id, conversation_id, message_id, body)
            VALUES (new.user_id, new.id, NULL, new.title);
    END""",
    """CREATE TRIGGER search_conversations_update AFTER UPDATE OF title ON conversations
    WHEN old.title IS NOT new.title BEGIN
        DELETE FROM search_entries WHERE conversation_id = old.id AND message_id IS NULL;
        INSERT INTO search_entries (user_id, conversation_id, message_id, body)
            SELECT new.user_id, new.id, NULL, new.title WHERE new.title IS NOT NULL;
    END""",
    """CREATE TRIGGER search_conversations_delete AFTER DELETE ON conversations BEGIN
        DELETE FROM search_entries WHERE conversation_id = old.id;
    END""",
]
SQLITE_DOWNGRADE = [
    *(
        f"DROP TRIGGER IF EXISTS search_{name}"
        for name in (
            "conversations_delete",
            "conversations_update",
            "conversations_insert",
            "messages_delete",
            "messages_update",
            "messages_insert",
            "entries_update",
            "entries_delete",
            "entries_insert",
        )
    ),
    "DROP TABLE IF EXISTS search_fts",
    "DROP TABLE IF EXISTS search_entries",
]

# to_tsvector with an explicit configuration is immutable, as a generated column needs.
# 'simple': no stemming or stop words, so every language is found word for word.
POSTGRES_UPGRADE = [
    """ALTER TABLE messages ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, text)) STORED""",
    "CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)",
    """ALTER TABLE conversations ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, coalesce(title, ''))) STORED""",
    "CREATE INDEX ix_conversations_search_vector ON conversations USING gin (search_vector)",
]
POSTGRES_DOWNGRADE = [
    "ALTER TABLE conversations DROP COLUMN search_vector",
    "ALTER TABLE messages DROP COLUMN search_vector",
]


def _statements(*, upgrade: bool) -> list[str]:
    if op.get_context().dialect.name == "sqlite":
        return SQLITE_UPGRADE if upgrade else SQLITE_DOWNGRADE
    return POSTGRES_UPGRADE if upgrade else POSTGRES_DOWNGRADE


def upgrade() -> None:
    for statement in _statements(upgrade=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(upgrade=False):
        op.execute(statement)
