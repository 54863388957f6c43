"""Waiting for a condition with a deadline, never for a fixed time.

`await eventually(lambda: len(runtime.batches) > 2, timeout=30)` asks the condition
again and again (a function, or a coroutine function) until its value is truthy, and
returns that value. With `holds`, the condition reads a value and `holds(value)` decides:
`await eventually(engine.load, holds=lambda load: load.waiting == 1)` then reports the
last load seen, not just False. Past the deadline it fails with the last value seen, so a slow thing
shows where it stood and a wrong thing is not taken for a slow one. A sleep used as
synchronisation passes whenever the awaited thing is merely slow; this does not.

`eventually_blocking` is the same for code that runs on a thread of its own (a
TestClient, a subprocess being watched, the engine's scheduler thread).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast, overload

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
INTERVAL_S = 0.01


class NeverHappenedError(AssertionError):
    """The condition was still false at its deadline; the message says its last value."""


def _failure(what: str | None, timeout: float, last: object) -> NeverHappenedError:
    subject = what or "the condition"
    return NeverHappenedError(f"{subject} did not hold within {timeout} s; last value: {last!r}")


@overload
async def eventually(
    condition: Callable[[], Awaitable[T]],
    timeout: float = ...,  # noqa: ASYNC109
    *,
    holds: Callable[[T], object] = ...,
    what: str | None = ...,
    interval: float = ...,
) -> T: ...


@overload
async def eventually(
    condition: Callable[[], T],
    timeout: float = ...,  # noqa: ASYNC109
    *,
    holds: Callable[[T], object] = ...,
    what: str | None = ...,
    interval: float = ...,
) -> T: ...


async def eventually(
    condition: Callable[[], Awaitable[T]] | Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT_S,  # noqa: ASYNC109 (a deadline between tries)
    *,
    holds: Callable[[T], object] = bool,
    what: str | None = None,
    interval: float = INTERVAL_S,
) -> T:
    """The condition's first value that holds, asked every `interval` seconds; fails
    with the last value seen after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if holds(cast(T, value)):
            return cast(T, value)
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, value)
        await asyncio.sleep(interval)


def eventually_blocking(
    condition: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT_S,
    *,
    holds: Callable[[T], object] = bool,
    what: str | None = None,
    interval: float = INTERVAL_S,
) -> T:
    """`eventually` for a thread that may block: sleeps between tries."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if holds(value):
            return value
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, value)
        time.sleep(interval)
