"""The bounded request queue in front of the one worker, with queue positions."""

from __future__ import annotations

import threading
from collections import deque

from llamaql.engine.jobs import Job
from llamaql.engine.types import EngineError, GenerationResult, QueueFullError


class JobQueue:
    """Waiting jobs, in order, plus the one the worker runs.

    A job's position is how many jobs are ahead of it, the running one included, so 0
    means it is running (or about to). Positions are sent whenever they change: on submit,
    when the worker takes a job, and when a queued job is cancelled. A job cancelled while
    queued leaves at once with a `cancelled` result and never reaches the worker.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._closed = False
        self._changed = threading.Condition()

    @property
    def running(self) -> Job | None:
        with self._changed:
            return self._running

    def has_room(self) -> bool:
        with self._changed:
            return not self._closed and len(self._waiting) < self.capacity

    def put(self, job: Job) -> None:
        """Queue a job or raise at once: QueueFullError when full, EngineError when closed."""
        with self._changed:
            if self._closed:
                raise EngineError("the engine is not running")
            if len(self._waiting) >= self.capacity:
                raise QueueFullError(
                    f"the request queue is full ({self.capacity} waiting); try again later"
                )
            job.cancel_hook = self._cancelled
            self._waiting.append(job)
            job.post_position(len(self._waiting) - 1 + (self._running is not None))
            self._changed.notify_all()

    def take(self) -> Job | None:
        """Block until a job is ready; None once the queue is closed."""
        with self._changed:
            self._running = None
            while not self._waiting and not self._closed:
                self._changed.wait()
            if self._closed:
                return None
            self._running = self._waiting.popleft()
            self._announce_positions()
            return self._running

    def done(self, job: Job) -> None:
        with self._changed:
            if self._running is job:
                self._running = None

    def close(self) -> list[Job]:
        """Refuse new jobs, wake the worker, and hand back the jobs still waiting."""
        with self._changed:
            self._closed = True
            left = list(self._waiting)
            self._waiting.clear()
            self._changed.notify_all()
            return left

    def _cancelled(self, job: Job) -> None:
        with self._changed:
            if job not in self._waiting:
                return  # running (the worker sees the flag) or already gone
            self._waiting.remove(job)
            self._announce_positions()
        job.finish(GenerationResult(text="", finish_reason="cancelled"))

    def _announce_positions(self) -> None:
        ahead = self._running is not None
        for index, job in enumerate(self._waiting):
            job.post_position(index + ahead)
        if self._running is not None:
            self._running.post_position(0)
