"""Rows written straight into a database at an older revision, to test an upgrade.

The repositories follow the newest models, so they cannot write to a database that a
migration has not reached yet; these Core tables name only the columns every revision
since 0001 has.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from llamaql.persistence.models import MessageKind, MessageStatus

CONVERSATIONS = sa.table(
    "conversations",
    sa.column("id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    sa.column("title", sa.String()),
    sa.column("options", sa.JSON()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
MESSAGES = sa.table(
    "messages",
    sa.column("id", sa.Uuid()),
    sa.column("conversation_id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    sa.column("seq", sa.Integer()),
    sa.column("kind", sa.Integer()),
    sa.column("text", sa.String()),
    sa.column("status", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def insert_conversation(
    engine: AsyncEngine, user_id: uuid.UUID, title: str | None = None
) -> uuid.UUID:
    conversation_id = uuid.uuid4()
    async with engine.begin() as connection:
        await connection.execute(
            CONVERSATIONS.insert().values(
                id=conversation_id,
                user_id=user_id,
                title=title,
                options={},
                created_at=START,
                updated_at=START,
            )
        )
    return conversation_id


async def insert_message(
    engine: AsyncEngine,
    *,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID,
    seq: int,
    kind: MessageKind,
    text: str,
    status: MessageStatus = MessageStatus.COMPLETE,
) -> uuid.UUID:
    message_id = uuid.uuid4()
    at = START + timedelta(seconds=seq)
    async with engine.begin() as connection:
        await connection.execute(
            MESSAGES.insert().values(
                id=message_id,
                conversation_id=conversation_id,
                user_id=user_id,
                seq=seq,
                kind=int(kind),
                text=text,
                status=status.value,
                created_at=at,
                updated_at=at,
            )
        )
    return message_id
