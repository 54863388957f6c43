from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from llamaql.persistence.models._time import UTCDateTime, utc_now
from llamaql.ports.values import MessageStatus


class Message(SQLModel, table=True):
    """One message; `seq` orders a conversation's messages (oldest first).

    Messages form a tree through `parent_id`: regenerating a reply or editing a user
    message adds a sibling, and a conversation shows one branch of the tree at a time.
    """

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_seq", "conversation_id", "seq", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    conversation_id: uuid.UUID = Field(foreign_key="conversations.id", ondelete="CASCADE")
    user_id: uuid.UUID = Field(index=True)
    seq: int
    parent_id: uuid.UUID | None = Field(
        default=None,
        index=True,
        description="the message this one follows (NULL: the first); siblings share it",
    )
    kind: int = Field(description="1 = system, 2 = bot (assistant), 3 = user")
    text: str = ""
    status: str = Field(default=MessageStatus.COMPLETE.value, max_length=16, index=True)
    finish_reason: str | None = Field(default=None, max_length=32)
    model: str | None = Field(
        default=None, max_length=128, description="the model that wrote a reply (NULL: a user's)"
    )
    # While GENERATING: the replica producing it, and when that replica last said it is
    # alive (the database's clock); recovery marks replies whose replica stopped beating.
    replica_id: str | None = Field(default=None, max_length=64)
    heartbeat_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # values.Usage's figures, one column each (NULL until a reply is saved with them).
    prompt_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_ms: float | None = None
    generation_ms: float | None = None
    tokens_per_second: float | None = None
    dropped_messages: int | None = None
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UTCDateTime(), nullable=False)
    )
