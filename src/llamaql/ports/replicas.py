"""The replica link: how this process reaches the other replicas of its database.

On SQLite one process is the server (`services.replicas.SingleProcess`); on PostgreSQL
the replica link (persistence/replica_link.py, LISTEN/NOTIFY) carries stop notices
between replicas, and the reply notices by which a replica watching another's reply
(replyStream) asks for its text and receives it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from llamaql.ports.events import UsersWoken


@dataclass(frozen=True, slots=True)
class StopNotice:
    """Some replica asks for the user's reply to stop: the reply `message_id`, or the
    reply in progress in `conversation_id` (the conversation was deleted)."""

    user_id: uuid.UUID
    message_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None


CancelHandler = Callable[[StopNotice], None]
"""What a replica does with a stop notice (from any replica, itself included)."""


@dataclass(frozen=True, slots=True)
class WatchNotice:
    """A replica watches reply `message_id` and has its text up to character `have`:
    the replica generating it sends the rest, then its new text, for a while."""

    message_id: uuid.UUID
    have: int


@dataclass(frozen=True, slots=True)
class TextNotice:
    """Reply `message_id`'s text from character `at` (str index) on: `text`."""

    message_id: uuid.UUID
    at: int
    text: str


ReplyNotice = WatchNotice | TextNotice
ReplyNoticeHandler = Callable[[ReplyNotice], None]
"""What a replica does with a reply notice (from any replica, itself included)."""


class ReplicaLink(Protocol):
    """This process among the replicas of one database (services/replicas.py)."""

    replica_id: str
    shared: bool
    """True when other replicas may be live on the database (PostgreSQL)."""

    def on_cancel(self, handler: CancelHandler) -> None:
        """Register what a cancel notice from any replica (this one included) calls."""
        ...

    def on_events(self, handler: UsersWoken) -> None:
        """Register what a new-events notice (a user id, sent by the transaction that
        wrote the events, at its commit, from any replica) calls."""
        ...

    async def ask_cancel(self, notice: StopNotice) -> None:
        """Ask every replica to stop a reply (the owner does; the others ignore it)."""
        ...

    def on_reply_notice(self, handler: ReplyNoticeHandler) -> None:
        """Register what a reply notice from any replica (this one included) calls."""
        ...

    async def send_reply_notice(self, notice: ReplyNotice) -> None:
        """Send a reply notice to every replica (best effort: a notice may be lost)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
