"""How many units of work wait for a lock now (a row, a user's replies), read from the
storage itself: a test waits for a writer to be blocked instead of sleeping."""

from __future__ import annotations

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.fakes.uow import FakeStore

_PG_LOCK_WAITS = text("SELECT count(*) FROM pg_locks WHERE NOT granted")


class LockWaits:
    """`await lock_waits()`: on the fake, its units waiting for a lock; on PostgreSQL,
    the ungranted locks; on SQLite, which shows nobody waiting, the statements sent and
    not yet answered (a writer blocked on the write lock, its busy timeout running)."""

    def __init__(self, *, store: FakeStore | None = None, engine: AsyncEngine | None = None):
        self._store = store
        self._engine = engine
        self._in_flight = 0
        if engine is not None and engine.dialect.name == "sqlite":
            sync_engine = engine.sync_engine
            event.listen(sync_engine, "before_cursor_execute", self._sent)
            event.listen(sync_engine, "after_cursor_execute", self._answered)
            event.listen(sync_engine, "handle_error", self._answered)

    def _sent(self, *_: object) -> None:
        self._in_flight += 1

    def _answered(self, *_: object) -> None:
        self._in_flight -= 1

    async def __call__(self) -> int:
        if self._store is not None:
            return self._store.lock_waiters
        assert self._engine is not None
        if self._engine.dialect.name == "sqlite":
            return self._in_flight
        async with self._engine.connect() as connection:
            waiting = await connection.scalar(_PG_LOCK_WAITS)
        return int(waiting or 0)
