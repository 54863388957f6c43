"""Each user's share of the database: at most N units of work open at once per user.

The connection pool is shared by everyone (SQLAlchemy's default: 5 connections plus 10
overflow, then a 30 s wait). Without a cap, one user with a few sockets of aliased
queries or a burst of sends holds every connection, and everyone else's requests wait
behind theirs and then fail. Counting statements per request would not help: the cost
limit and the loaders already keep one request small; it is many requests of one user
at once that starve the pool.

So every unit of work opened on behalf of a user takes one of that user's
`LLAMAQL_DB_UNITS_PER_USER` slots for as long as it is open. A unit that finds them all
taken waits in line (a user's own requests queue behind each other, not behind anybody
else's); one that waits longer than `LLAMAQL_DB_WAIT_SECONDS` fails with QUEUE_FULL
(retryable), having written nothing.

Who the work is for comes from a context variable that each GraphQL operation sets
(`acting_for` in ports/acting_user.py, from the schema extension ApiOperation). Tasks an
operation starts inherit it, so a reply's checkpoints and final save count toward its
user's share too: a user's flood can delay their own replies, never another user's. Work
of the server itself (start-up recovery, heartbeats) names no user and is not capped.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast

from llamaql.ports.acting_user import acting_user
from llamaql.ports.errors import DomainError
from llamaql.ports.repositories import UnitOfWork, UnitOfWorkFactory


class DatabaseShareError(DomainError):
    """The user's units of work stayed busy past the wait: nothing was written."""

    def __init__(self, units: int, wait_s: float) -> None:
        super().__init__(
            f"too much database work at once for this user ({units} operations running, "
            f"waited {wait_s:g} s for one to finish); try again shortly",
            code="QUEUE_FULL",
            retryable=True,
        )


@dataclass
class _UserSlots:
    free: asyncio.Semaphore
    held: int = 0
    users: int = 0  # holders and waiters; the entry is dropped when it reaches 0


class DatabaseShares:
    """Per-user semaphores over units of work; entries exist only while in use."""

    def __init__(self, *, units_per_user: int, wait_s: float) -> None:
        if units_per_user < 1:
            raise ValueError(f"units_per_user must be at least 1, got {units_per_user}")
        self.units_per_user = units_per_user
        self.wait_s = wait_s
        self._slots: dict[uuid.UUID, _UserSlots] = {}

    def in_use(self, user_id: uuid.UUID) -> int:
        """How many of the user's slots are taken now (for tests and metrics)."""
        slots = self._slots.get(user_id)
        return 0 if slots is None else slots.held

    async def acquire(self, user_id: uuid.UUID) -> None:
        slots = self._slots.get(user_id)
        if slots is None:
            slots = self._slots[user_id] = _UserSlots(asyncio.Semaphore(self.units_per_user))
        slots.users += 1
        try:
            if slots.free.locked():
                await asyncio.wait_for(slots.free.acquire(), timeout=self.wait_s)
            else:  # a free slot is taken at once; wait_for would cost a task per unit
                await slots.free.acquire()
        except TimeoutError:
            self._leave(user_id, slots)
            raise DatabaseShareError(self.units_per_user, self.wait_s) from None
        except BaseException:
            self._leave(user_id, slots)
            raise
        slots.held += 1

    def release(self, user_id: uuid.UUID) -> None:
        slots = self._slots[user_id]
        slots.held -= 1
        slots.free.release()
        self._leave(user_id, slots)

    def _leave(self, user_id: uuid.UUID, slots: _UserSlots) -> None:
        slots.users -= 1
        if slots.users == 0:
            del self._slots[user_id]

    def wrap(self, factory: UnitOfWorkFactory) -> UnitOfWorkFactory:
        """A factory whose units take a slot of the acting user while open."""

        def shared() -> UnitOfWork:
            # The repositories are the inner unit's (__getattr__): cast, not a copy of
            # the protocol's attribute list that would drift from it.
            return cast(UnitOfWork, SharedUnitOfWork(factory(), self))

        return shared


class SharedUnitOfWork:
    """A UnitOfWork that holds one of its user's slots from enter to exit; its
    repositories are the inner unit's."""

    def __init__(self, inner: UnitOfWork, shares: DatabaseShares) -> None:
        self._inner = inner
        self._shares = shares
        self._user: uuid.UUID | None = None

    async def __aenter__(self) -> Self:
        user_id = acting_user()
        if user_id is not None:
            await self._shares.acquire(user_id)
            self._user = user_id
        try:
            await self._inner.__aenter__()
        except BaseException:
            self._release()
            raise
        return self

    def __getattr__(self, name: str) -> Any:
        # Only for what this class does not define: the inner unit's repositories.
        return getattr(self._inner, name)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._inner.__aexit__(exc_type, exc, tb)
        finally:
            self._release()

    async def commit(self) -> None:
        await self._inner.commit()

    def _release(self) -> None:
        if self._user is not None:
            self._shares.release(self._user)
            self._user = None
