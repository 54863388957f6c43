from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from llamaql.persistence.models._time import UTCDateTime, utc_now

# SQLite makes only an INTEGER PRIMARY KEY a rowid alias; AUTOINCREMENT (the table's
# sqlite_autoincrement) never reuses a key, even after the newest rows were purged, so a
# reader's cursor never points past a later event.
EVENT_KEY = BigInteger().with_variant(Integer(), "sqlite")


class Event(SQLModel, table=True):
    """The live feed's outbox: one row per change of a user's conversations, written in
    the change's transaction. `key` orders a user's events in commit order."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_user_key", "user_id", "key"),
        Index("ix_events_created_at", "created_at"),
        {"sqlite_autoincrement": True},
    )

    key: int | None = Field(
        default=None, sa_column=Column(EVENT_KEY, primary_key=True, autoincrement=True)
    )
    user_id: uuid.UUID
    conversation_id: uuid.UUID  # no foreign key: a deleted conversation's events stay
    kind: str = Field(max_length=32)
    message_id: uuid.UUID | None = Field(default=None)
    status: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UTCDateTime(), nullable=False)
    )
