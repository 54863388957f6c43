"""SqlEventRepository: the live feed's outbox (ports/events.py) on one session.

Events recorded in a unit of work are written by `flush()`, which the unit of work calls
right before it commits: the event is the transaction's last write, so the per-user lock
it takes on PostgreSQL is held only for the commit itself (and never while the
transaction waits for another lock, which could deadlock).

Ordering (the outbox gap problem): PostgreSQL hands out BIGSERIAL keys at insert, not at
commit, so without care a reader could see key 11 committed before key 10 and skip 10
for good. A transaction-scoped advisory lock on the user, taken before the insert,
serialises the inserts-to-commits of one user: a key is drawn only after the user's
previous event committed, so the user's keys commit in increasing order. Feeds read per
user, so other users' interleaving does not matter. SQLite has one writer: keys are in
commit order already. On PostgreSQL the same statement as the lock sends `pg_notify` on
`EVENTS_CHANNEL` with the user id, delivered to every replica only when it commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, delete, func, insert, literal
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from llamaql.persistence.models import Event, utc_now
from llamaql.ports.events import EventKind, StoredEvent
from llamaql.ports.values import MessageStatus

EVENTS_CHANNEL = "llamaql_events"
_INSERT = insert(Event.__table__)  # type: ignore[attr-defined]
EVENTS_LOCK_SPACE = 0x6C716576  # "lqev": the first key of the per-user two-key lock


def events_lock_key(user_id: uuid.UUID) -> int:
    """A user's 32-bit key in the events lock space (two users sharing one only wait)."""
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)


class SqlEventRepository:
    """The outbox of one session; see ports.events.EventRepository."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # Rows to insert, as the INSERT's parameters: no ORM objects (building one and
        # flushing it through the session cost most of a send's outbox write).
        self._recorded: list[dict[str, Any]] = []

    def record(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        kind: EventKind,
        message_id: uuid.UUID | None = None,
        status: MessageStatus | None = None,
    ) -> None:
        self._recorded.append(
            {
                "user_id": user_id,
                "conversation_id": conversation_id,
                "kind": kind.value,
                "message_id": message_id,
                "status": status.value if status is not None else None,
                "created_at": utc_now(),
            }
        )

    async def flush(self) -> set[uuid.UUID]:
        """Write the recorded events (in the caller's transaction); their users."""
        recorded, self._recorded = self._recorded, []
        users: set[uuid.UUID] = {event["user_id"] for event in recorded}
        if recorded:
            # The session's pending changes first: the events stay the last write, after
            # any wait for a row lock (the events lock must not be held through one).
            await self._session.flush()
        postgres = self._session.get_bind().dialect.name == "postgresql"
        for user_id in sorted(users):  # one order for every transaction: no deadlock
            if postgres:
                # One trip: the lock, and the notice PostgreSQL holds back until COMMIT.
                lock = func.pg_advisory_xact_lock(
                    literal(EVENTS_LOCK_SPACE, Integer), literal(events_lock_key(user_id), Integer)
                )
                notify = func.pg_notify(literal(EVENTS_CHANNEL), literal(str(user_id)))
                await self._session.exec(select(lock, notify))
            # On the session's connection (its transaction), in recording order.
            connection = await self._session.connection()
            await connection.execute(
                _INSERT, [event for event in recorded if event["user_id"] == user_id]
            )
        return users

    async def after(self, *, user_id: uuid.UUID, key: int, limit: int) -> Sequence[StoredEvent]:
        statement = (
            select(Event)
            .where(col(Event.user_id) == user_id, col(Event.key) > key)
            .order_by(col(Event.key))
            .limit(limit)
        )
        rows = (await self._session.exec(statement)).all()
        return [_value(row) for row in rows]

    async def head(self, *, user_id: uuid.UUID) -> int:
        statement = select(func.max(col(Event.key))).where(col(Event.user_id) == user_id)
        newest = (await self._session.exec(statement)).one()
        return int(newest or 0)

    async def delete_before(self, *, cutoff: datetime, limit: int) -> int:
        oldest = (
            select(col(Event.key))
            .where(col(Event.created_at) < cutoff)
            .order_by(col(Event.key))
            .limit(limit)
        )
        statement = delete(Event).where(col(Event.key).in_(oldest.scalar_subquery()))
        result = await self._session.exec(statement)
        return int(result.rowcount)


def _value(row: Event) -> StoredEvent:
    assert row.key is not None
    return StoredEvent(
        key=row.key,
        user_id=row.user_id,
        conversation_id=row.conversation_id,
        kind=EventKind(row.kind),
        created_at=row.created_at,
        message_id=row.message_id,
        status=MessageStatus(row.status) if row.status is not None else None,
    )
