"""Adding and removing models: `pullModel`, `pullProgress` and `deleteModel` over the API
(for the users in LLAMAQL_MODEL_ADMINS only), and `llamaql pull` on the server's machine.

A pull runs in a thread of its own (the `ModelFiles` adapter blocks: it writes and hashes
gigabytes) and reports to the event loop at most every PUBLISH_EVERY_S; each report
replaces the pull's `PullProgress`, which any number of watchers follow. Pulls live in
this process's memory: `pullProgress` must reach the server that started the pull.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from llamaql.config import PullConfig
from llamaql.ports.errors import BadInputError, DomainError, ForbiddenError, NotFoundError
from llamaql.ports.model_files import (
    ModelFiles,
    ModelsInUse,
    NothingLoaded,
    PullFailure,
    PullProgress,
    PullSource,
    PullState,
    model_exists_error,
)
from llamaql.ports.model_names import is_model_name
from llamaql.services.pull_sources import pull_source

logger = logging.getLogger(__name__)

PUBLISH_EVERY_S = 0.1
RATE_WINDOW_S = 3.0
KEEP_FINISHED = 64
NOT_ADMIN = "only the users listed in LLAMAQL_MODEL_ADMINS may add or delete models"
Clock = Callable[[], float]


class RateMeter:
    """Bytes per second over the last RATE_WINDOW_S (a steadier figure than the last
    report's, and one that falls when a download stalls)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def rate(self, now: float, done: int) -> float:
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()  # the server ignored Range: the file started over
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
            self._samples.popleft()
        first_time, first_done = self._samples[0]
        return (done - first_done) / (now - first_time) if now > first_time else 0.0


class _Pull:
    """One pull's latest progress, and an event set (then replaced) at each change."""

    def __init__(self, progress: PullProgress) -> None:
        self.progress = progress
        self.changed = asyncio.Event()
        self.cancel = threading.Event()
        self.meter = RateMeter()
        self.task: asyncio.Task[None] | None = None

    def publish(self, progress: PullProgress) -> None:
        self.progress = progress
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class _Listener:
    """The download thread's reports, handed to the event loop at most every
    PUBLISH_EVERY_S (the last bytes go with the switch to VERIFYING)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, update: Callable[..., None], clock: Clock
    ) -> None:
        self._loop, self._update, self._clock = loop, update, clock
        self._last = -PUBLISH_EVERY_S
        self._done = 0
        self._total: int | None = None

    def downloaded(self, done: int, total: int | None) -> None:
        self._done, self._total = done, total
        now = self._clock()
        if now - self._last >= PUBLISH_EVERY_S:
            self._last = now
            self._loop.call_soon_threadsafe(self._update, PullState.DOWNLOADING, done, total)

    def verifying(self) -> None:
        self._loop.call_soon_threadsafe(self._update, PullState.VERIFYING, self._done, self._total)


class ModelPullService:
    """Starts pulls, reports their progress, deletes models; the `*_as` methods are the
    API's and refuse users not in LLAMAQL_MODEL_ADMINS with FORBIDDEN."""

    def __init__(
        self,
        files: ModelFiles,
        config: PullConfig,
        *,
        in_use: ModelsInUse | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._files = files
        self._admins = frozenset(config.model_admins)
        self._in_use = in_use or NothingLoaded()
        self._clock = clock
        self._pulls: dict[uuid.UUID, _Pull] = {}

    def check_admin(self, user_id: uuid.UUID) -> None:
        if user_id not in self._admins:
            raise ForbiddenError(NOT_ADMIN)

    def pull_as(
        self,
        user_id: uuid.UUID,
        url: str,
        *,
        name: str | None = None,
        sha256: str | None = None,
        replace: bool = False,
    ) -> uuid.UUID:
        self.check_admin(user_id)
        return self.start(url, name=name, sha256=sha256, replace=replace)

    def start(
        self, url: str, *, name: str | None = None, sha256: str | None = None, replace: bool = False
    ) -> uuid.UUID:
        """Check the request and start the pull (BadInputError before anything is
        written); its id is for `watch`."""
        source = pull_source(url, name=name, sha256=sha256, replace=replace)
        if any(p.progress.name == source.name and not p.progress.finished for p in self._live()):
            raise BadInputError(f"a pull of {source.name!r} is already running")
        if not replace and self._files.has_model(source.name):
            raise model_exists_error(source.name)
        self._forget_old()
        pull_id = uuid.uuid4()
        pull = _Pull(PullProgress(pull_id, source.name, source.url, PullState.DOWNLOADING))
        self._pulls[pull_id] = pull
        pull.task = asyncio.get_running_loop().create_task(self._run(pull, source))
        return pull_id

    def watch_as(self, user_id: uuid.UUID, pull_id: uuid.UUID) -> AsyncIterator[PullProgress]:
        self.check_admin(user_id)
        return self.watch(pull_id)

    def watch(self, pull_id: uuid.UUID) -> AsyncIterator[PullProgress]:
        """The pull's progress now, then at each change, ending with COMPLETE or FAILED."""
        pull = self._pulls.get(pull_id)
        if pull is None:
            raise NotFoundError(f"no pull {pull_id} on this server")
        return _follow(pull)

    async def delete_as(self, user_id: uuid.UUID, name: str) -> None:
        self.check_admin(user_id)
        await self.delete(name)

    async def delete(self, name: str) -> None:
        """Remove the model's file; BAD_USER_INPUT for a name that is not a model name,
        NOT_FOUND when the folder has no such model, and whatever the engine's
        `ModelsInUse` says while the model is in use."""
        if not is_model_name(name):
            raise BadInputError(f"name {name!r} is not a model name")
        self._in_use.check_deletable(name)
        await asyncio.to_thread(self._files.delete, name)

    async def aclose(self) -> None:
        """Cancel the running pulls (their files are removed) and wait for them."""
        tasks = [p.task for p in self._live() if p.task is not None and not p.progress.finished]
        for pull in self._live():
            pull.cancel.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _live(self) -> list[_Pull]:
        return list(self._pulls.values())

    def _forget_old(self) -> None:
        finished = [i for i, p in self._pulls.items() if p.progress.finished]
        for pull_id in finished[: max(0, len(finished) - KEEP_FINISHED + 1)]:
            del self._pulls[pull_id]

    async def _run(self, pull: _Pull, source: PullSource) -> None:
        def update(state: PullState, done: int, total: int | None) -> None:
            rate = pull.meter.rate(self._clock(), done)
            pull.publish(
                replace(
                    pull.progress,
                    state=state,
                    bytes_done=done,
                    total_bytes=total,
                    bytes_per_second=rate,
                )
            )

        listener = _Listener(asyncio.get_running_loop(), update, self._clock)
        try:
            await asyncio.to_thread(self._files.pull, source, listener, pull.cancel.is_set)
        except DomainError as exc:
            failure = PullFailure(exc.code, exc.message, exc.retryable)
            # The one who asked gets the reason (pullProgress, or the CLI's last line).
            logger.info("pull of %s from %s failed: %s", source.name, source.url, exc.message)
            pull.publish(replace(pull.progress, state=PullState.FAILED, failure=failure))
        except Exception:
            logger.exception("pull of %s from %s failed unexpectedly", source.name, source.url)
            failure = PullFailure("INTERNAL", "the pull failed unexpectedly (see the server log)")
            pull.publish(replace(pull.progress, state=PullState.FAILED, failure=failure))
        else:
            done = pull.progress.bytes_done
            pull.publish(replace(pull.progress, state=PullState.COMPLETE, total_bytes=done))


async def _follow(pull: _Pull) -> AsyncIterator[PullProgress]:
    seen: PullProgress | None = None
    while True:
        progress, changed = pull.progress, pull.changed
        if progress is not seen:
            seen = progress
            yield progress
        if progress.finished:
            return
        await changed.wait()
