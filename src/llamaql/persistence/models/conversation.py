from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from llamaql.persistence.models._time import UTCDateTime, utc_now


class Conversation(SQLModel, table=True):
    """One user's conversation; `options` holds its generation defaults.

    `current_leaf_id` picks the branch of the message tree that is current: the path
    from the root to that message (NULL while there are no messages).
    """

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_updated", "user_id", "updated_at", "id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(index=True)
    title: str | None = Field(default=None, max_length=200)
    system_prompt: str | None = Field(default=None)
    current_leaf_id: uuid.UUID | None = Field(
        default=None, description="the newest message of the branch shown and prompted from"
    )
    model: str | None = Field(
        default=None,
        max_length=128,
        description="the model that answers (a name of the models folder); NULL: the "
        "server's default at each send",
    )
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UTCDateTime(), nullable=False)
    )
