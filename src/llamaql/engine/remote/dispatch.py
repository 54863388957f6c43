"""The remote engine's replies in flight: admitted fairly from the queue, at most
LLAMAQL_PARALLEL streaming from the upstream at once, each in a task of its own that a
cancel stops by closing its upstream stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

from llamaql.engine import intake
from llamaql.engine.admission import AdmissionQueue
from llamaql.engine.jobs import Job
from llamaql.engine.remote.request import chat_body
from llamaql.engine.remote.stream import stream_reply
from llamaql.ports.engine import EngineError, GenerationResult, PreparedPrompt, Requester

logger = logging.getLogger(__name__)


class RemoteDispatch:
    """Queue and streaming replies; `reached(answered)` hears whether the upstream
    answered each request."""

    def __init__(
        self,
        *,
        queue_size: int,
        parallel: int,
        stream_interval_s: float,
        reached: Callable[[bool], None],
    ) -> None:
        self._queue = AdmissionQueue(queue_size)
        self._parallel = parallel
        self._stream_interval = stream_interval_s
        self._reached = reached
        self._active: dict[Job, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        self._url = ""

    def open(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url
        self._queue.set_free(self._parallel)

    async def close(self) -> None:
        """End the waiting replies and cancel the streaming ones."""
        intake.end_waiting(self._queue)
        tasks = list(self._active.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._client = None

    def has_room(self) -> bool:
        return self._client is not None and self._queue.has_room()

    def waiting(self) -> int:
        return self._queue.waiting()

    def active(self) -> int:
        return len(self._active)

    def streaming(self, model: str, default: str | None) -> int:
        """Replies streaming from `model` now (waiting ones are not counted)."""
        return sum((job.prompt.model or default) == model for job in self._active)

    def submit(
        self,
        prompt: PreparedPrompt,
        requester: Requester,
        *,
        default_model: str | None,
        background: bool,
    ) -> Job:
        job = intake.queue_job(
            self._queue,
            prompt,
            requester,
            stream_interval=self._stream_interval,
            background=background,
        )
        self._dispatch(default_model)
        return job

    def _dispatch(self, default_model: str | None) -> None:
        """Start waiting replies while fewer than LLAMAQL_PARALLEL stream; a background
        one only when nothing else streams."""
        while len(self._active) < self._parallel and not self._queue.closed:
            job = self._queue.pop(background=not self._active)
            if job is None:
                break
            self._start(job, default_model)
        self._queue.set_free(self._parallel - len(self._active))

    def _start(self, job: Job, default_model: str | None) -> None:
        assert self._client is not None
        job.post_position(0)  # streaming now (a waiting one was told n >= 1)
        model = job.prompt.model or default_model
        body = chat_body(job.prompt.messages, job.prompt.options, model=model)
        url = f"{self._url}/chat/completions"
        task = asyncio.create_task(stream_reply(job, self._client, url, body, self._reached))
        self._active[job] = task
        loop = asyncio.get_running_loop()

        # Out of the queue now: a cancel closes the upstream stream (from any thread).
        def close_stream(_job: Job) -> None:
            loop.call_soon_threadsafe(task.cancel)

        job.cancel_hook = close_stream
        if job.cancelled:
            task.cancel()
        task.add_done_callback(lambda done: self._ended(job, done, default_model))

    def _ended(self, job: Job, task: asyncio.Task[None], default_model: str | None) -> None:
        self._active.pop(job, None)
        if not job.finished:
            # Cancelled before its first step, or a bug: the job must still end.
            if not task.cancelled() and task.exception() is not None:
                logger.error("remote reply failed", exc_info=task.exception())
                job.fail(EngineError("the reply failed inside the server"))
            else:
                job.finish(GenerationResult(text="", finish_reason="cancelled"))
        if self._client is not None:
            self._dispatch(default_model)
