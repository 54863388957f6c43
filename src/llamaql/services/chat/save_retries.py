"""When a reply's final save is tried again while the database refuses it for now.

The quick pauses first (a lock, a blip), then doubling up to 5 s between tries while
the database stays away, until `retry_s` (LLAMAQL_SAVE_RETRY_SECONDS) has passed since
the first try. Someone waiting for the reply (a cancel, the conversation's next send)
cuts a pause short; shutdown asks for one last try.
"""

from __future__ import annotations

import asyncio
import contextlib

SAVE_RETRY_PAUSES_S = (0.1, 0.5, 2.0)
SAVE_RETRY_MAX_PAUSE_S = 5.0
SAVE_RETRY_S = 300.0  # LLAMAQL_SAVE_RETRY_SECONDS
_MIN_BACKOFF_S = 0.1  # the doubling starts here when the quick pauses are 0 (tests)


class SaveRetries:
    """The pauses between tries of one reply's save, and when to stop trying."""

    def __init__(
        self, pauses: tuple[float, ...] = SAVE_RETRY_PAUSES_S, retry_s: float = SAVE_RETRY_S
    ) -> None:
        self.pauses = pauses or (0.0,)
        self.retry_s = retry_s
        self._now = asyncio.Event()
        self._last_try = False
        self._give_up_at: float | None = None

    def nudge(self) -> None:
        """Someone waits for the reply: the next try is now."""
        self._now.set()

    def last_try(self) -> None:
        """Shutdown: stop after the next try when the database is unreachable, after the
        quick tries when it is only busy; no backing off for minutes."""
        self._last_try = True
        self._now.set()

    def over(self, attempt: int, *, unreachable: bool) -> bool:
        """Whether to stop trying after failed try `attempt` (the clock starts at the
        first check)."""
        now = asyncio.get_running_loop().time()
        if self._give_up_at is None:
            self._give_up_at = now + self.retry_s
        if self._last_try and (unreachable or attempt > len(self.pauses)):
            return True
        return now >= self._give_up_at

    async def pause(self, attempt: int) -> None:
        """Wait before try `attempt + 1` (or less, when nudged)."""
        if attempt <= len(self.pauses):
            pause = self.pauses[attempt - 1]
        else:  # backing off while the database is away: doubling, at most 5 s
            doublings = min(attempt - len(self.pauses), 16)
            base = max(self.pauses[-1], _MIN_BACKOFF_S)
            pause = min(SAVE_RETRY_MAX_PAUSE_S, base * 2**doublings)
        # A nudge during the try that just failed still counts: the next try is at once.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._now.wait(), pause)
        self._now.clear()
