"""Message branches: each message names its parent; a conversation names its current leaf.

`messages.parent_id` is the message a message answers or follows (NULL for a
conversation's first message); messages sharing a parent are siblings, i.e. the
alternatives that regenerate and edit create. `conversations.current_leaf_id` is the
newest message of the branch that is shown and prompted from.

Existing conversations become single branches: each message's parent is the message
before it by `seq`, and the current leaf is the last one.

Plain ADD COLUMN on both dialects: no foreign keys, so SQLite needs no batch rebuild of
`messages` (which would drop 0002's search triggers). The repository keeps both pointers
inside one user's conversation, and messages are only ever deleted with it.

Downgrade drops the columns and keeps every message: on an old schema the alternatives of
a branch show up in `seq` order, which loses the tree but no text.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Correlated subqueries that both SQLite and PostgreSQL run as written.
LINK_PARENTS = """
UPDATE messages SET parent_id = (
    SELECT previous.id FROM messages AS previous
    WHERE previous.conversation_id = messages.conversation_id
      AND previous.seq < messages.seq
    ORDER BY previous.seq DESC
    LIMIT 1
)
"""
SET_CURRENT_LEAVES = """
UPDATE conversations SET current_leaf_id = (
    SELECT last.id FROM messages AS last
    WHERE last.conversation_id = conversations.id
    ORDER BY last.seq DESC
    LIMIT 1
)
"""


def upgrade() -> None:
    op.add_column("messages", sa.Column("parent_id", sa.Uuid(), nullable=True))
    # Serves "the children of a message" (siblings, the newest leaf under a message).
    op.create_index(op.f("ix_messages_parent_id"), "messages", ["parent_id"])
    op.add_column("conversations", sa.Column("current_leaf_id", sa.Uuid(), nullable=True))
    op.execute(LINK_PARENTS)
    op.execute(SET_CURRENT_LEAVES)


def downgrade() -> None:
    op.drop_column("conversations", "current_leaf_id")
    op.drop_index(op.f("ix_messages_parent_id"), table_name="messages")
    op.drop_column("messages", "parent_id")
