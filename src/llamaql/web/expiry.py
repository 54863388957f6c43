"""A socket lives no longer than its credentials.

A bearer token is checked when its socket connects; without more, the socket would keep
answering (queries, new replies) for hours after the token expired, while HTTP refuses
it. `CredentialExpiry` is one timer per connection, set from the token's expiry when the
connection is acknowledged: at that moment it closes the socket with 4403, and
`expired()` refuses an operation that arrives before the timer has run (an event loop
busy at the deadline). No check per message is needed beyond that comparison.

What the socket started is not undone: a reply it sent keeps running (replies belong to
the server), and the client reconnects with a fresh token and resumes with
`replyStream(after:)` and `events(since:)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

CLOSE_EXPIRED = 4403
EXPIRED_REASON = "the token expired: reconnect with a fresh one"

Clock = Callable[[], float]
CloseSocket = Callable[[int, str], Awaitable[None]]


class CredentialExpiry:
    """Closes one socket with 4403 when its credentials expire (epoch seconds)."""

    def __init__(self, close: CloseSocket, *, clock: Clock = time.time) -> None:
        self._close = close
        self._clock = clock
        self._expires_at: float | None = None
        self._timer: asyncio.Task[None] | None = None

    def start(self, expires_at: float | None) -> None:
        """Arm the timer (None: credentials that do not expire, nothing to do)."""
        self.cancel()
        self._expires_at = expires_at
        if expires_at is not None:
            self._timer = asyncio.get_running_loop().create_task(self._close_at(expires_at))

    def expired(self) -> bool:
        """True once the credentials are past their expiry, timer run or not."""
        return self._expires_at is not None and self._clock() >= self._expires_at

    async def close_expired(self) -> None:
        """Close the socket now, saying why (the client should reconnect with a new token)."""
        self.cancel()
        await self._close(CLOSE_EXPIRED, EXPIRED_REASON)

    def cancel(self) -> None:
        """Disarm the timer (the socket closed first)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None

    async def _close_at(self, expires_at: float) -> None:
        # `exp` is a wall-clock time: slept in its terms, rechecked on waking (the loop's
        # monotonic clock and the wall clock may drift apart over a long-lived socket).
        while (remaining := expires_at - self._clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining)
        logger.info("closing a socket whose token expired")
        self._timer = None
        with contextlib.suppress(Exception):  # the socket may be closing already
            await self._close(CLOSE_EXPIRED, EXPIRED_REASON)
