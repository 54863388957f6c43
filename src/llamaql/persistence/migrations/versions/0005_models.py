"""A model per conversation, and the model of each reply.

`conversations.model` names the model that answers (a name of the models folder); NULL
keeps the old meaning, the server's default model at each send. `messages.model` is the
model that wrote a reply (NULL for user messages and for replies written before this
revision).

Plain ADD COLUMN of nullable columns on both dialects: no batch rebuild (which would drop
0002's search triggers), and existing rows need no value.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("model", sa.String(length=128), nullable=True))
    op.add_column("messages", sa.Column("model", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "model")
    op.drop_column("conversations", "model")
