"""Whether the database answers, for `/health`: cheap, bounded and shared.

A readiness probe (a load balancer, Kubernetes) may ask often and many at once. One
`SELECT 1` runs at a time, every caller meanwhile awaits that one, and its answer is
reused for `fresh_s`; each check gives up after `timeout_s`, so a database that relays
nothing makes `/health` answer 503 in that time instead of hanging with it.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from llamaql.persistence.outages import is_unreachable

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0
FRESH_S = 1.0


class DatabaseProbe:
    """`await probe.problem()`: None while the database answers, else a short reason."""

    def __init__(
        self, engine: AsyncEngine, *, timeout_s: float = CHECK_TIMEOUT_S, fresh_s: float = FRESH_S
    ) -> None:
        self._engine = engine
        self._timeout_s = timeout_s
        self._fresh_s = fresh_s
        self._answer: str | None = None
        self._answered_at: float | None = None
        self._running: asyncio.Task[str | None] | None = None

    async def problem(self) -> str | None:
        now = asyncio.get_running_loop().time()
        if self._answered_at is not None and now - self._answered_at < self._fresh_s:
            return self._answer
        if self._running is None:
            self._running = asyncio.create_task(self._check(), name="database-probe")
        # Shielded: a caller that goes away does not cut the check the others await.
        return await asyncio.shield(self._running)

    async def _check(self) -> str | None:
        try:
            answer = await self._ask()
        finally:
            self._running = None
        previous, self._answer = self._answer, answer
        self._answered_at = asyncio.get_running_loop().time()
        if answer != previous:
            if answer is None:
                logger.info("the database answers again")
            else:
                logger.warning("health: %s", answer)
        return answer

    async def _ask(self) -> str | None:
        try:
            async with asyncio.timeout(self._timeout_s), self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except TimeoutError:
            return f"the database did not answer within {self._timeout_s:g} s"
        except Exception as exc:
            if is_unreachable(exc):
                return f"the database is unreachable ({type(exc).__name__})"
            return f"the database check failed ({type(exc).__name__})"
        return None
