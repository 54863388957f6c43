"""Reply ownership: which replica is generating a reply, and its last heartbeat.

`messages.replica_id` names the `llamaql serve` process (LLAMAQL_REPLICA_ID) generating
a GENERATING reply; `messages.heartbeat_at` is when that replica last said it is alive,
by the database's clock, so replicas' clocks never have to agree. Recovery marks a reply
FAILED/interrupted only when its heartbeat is older than LLAMAQL_REPLICA_DEAD_AFTER_SECONDS
(or it never had one: replies from before this revision).

Plain ADD/DROP COLUMN on both dialects: SQLite needs no batch rebuild of `messages`
(which would drop 0002's search triggers). Downgrade drops both columns.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("replica_id", sa.String(length=64), nullable=True))
    op.add_column("messages", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "heartbeat_at")
    op.drop_column("messages", "replica_id")
