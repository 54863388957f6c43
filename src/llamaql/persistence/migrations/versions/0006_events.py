"""The live feed's outbox: `events`, one row per change of a user's conversations.

Written in the same transaction as the change it describes; `key` orders a user's
events in commit order (PostgreSQL: BIGSERIAL taken under a per-user advisory lock;
SQLite: AUTOINCREMENT, never reusing a purged key). Rows older than
LLAMAQL_EVENT_RETENTION_SECONDS are deleted by the servers. A new table: downgrade drops
it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "key",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_user_key", "events", ["user_id", "key"])
    op.create_index("ix_events_created_at", "events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_events_created_at", table_name="events")
    op.drop_index("ix_events_user_key", table_name="events")
    op.drop_table("events")
