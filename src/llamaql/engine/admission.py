"""The bounded queue of requests waiting for a sequence, admitted fairly across users.

The next request admitted is the oldest waiting one of the user served least recently
(users never served first), so one user with many waiting replies holds back another
user's reply by at most one admission. Every waiting request is told its place in that
order whenever it changes: 0 when a free sequence will take it at the next step, else
n >= 1, the n-th to start once sequences free up. Background requests (titles) wait in a
queue of their own, bounded alike, and start only when the engine has nothing else to do:
no request waits and no reply is decoding (so they never share a step with a reply). The
scheduler hands a background request back (`requeue`) when a reply arrives while it runs.

A reply request that has begun (`hold_background`, before its database work) is
announced; its arrival (`put`) settles the oldest announcement. An idle scheduler about
to start a burst's first step waits (`gather`) a few milliseconds for the replies
announced but not yet arrived, so that a burst's prompts share one step, as they do on
a server whose request path costs nothing: otherwise the replies arriving a few
milliseconds after the first each wait for its whole prompt step (the first token p95
of 4 chats at once was 1.4x llama-server's). A lone reply has nothing announced and
never waits. A request refused before it arrives withdraws its announcement
(`withdraw`); before it did, the next lone reply within ANNOUNCED_FOR_S of a refusal (or
of a send to another loaded model, which announces to every model) waited for
it. One that never arrives nor withdraws is forgotten after ANNOUNCED_FOR_S.

Several schedulers (decode lanes, LLAMAQL_DECODE_LANES: engine/local/engine.py) may
take from one queue, each saying which lane it is. The fair order stays one order; a lane
skips a job whose conversation's KV another lane holds in an idle sequence (`Job.home`)
while that lane has room, and a lane takes a job with no home only while it has fewer
live replies than its share of all those live and waiting, so a burst spreads evenly.
Background jobs start only when no lane has a live reply.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import OrderedDict, deque

from llamaql.engine.jobs import Job
from llamaql.ports.engine import EngineError, GenerationResult, QueueFullError

# How long a begun reply request counts as on its way (its request path takes a few ms).
ANNOUNCED_FOR_S = 0.25
# Users whose last admission is remembered; one forgotten ranks as never served, which
# only matters against users served even longer ago.
REMEMBERED_USERS = 10_000
_LATER = 1 << 62


class AdmissionQueue:
    """Waiting jobs by user; thread-safe. `capacity` bounds the waiting jobs."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_user: dict[str, deque[Job]] = {}
        self._arrival: dict[Job, int] = {}
        self._background: deque[Job] = deque()
        self._served: OrderedDict[str, int] = OrderedDict()  # user -> admission number
        self._counter = itertools.count()
        self._free = 0  # idle sequences of every lane, as their schedulers last said
        self._lanes: dict[int, tuple[int, int]] = {}  # lane -> (idle sequences, live replies)
        self._hold_until = 0.0  # monotonic time until which background work waits
        self._announced: deque[float] = deque()  # when each reply request on its way began
        self._last_arrival = 0.0  # monotonic time of the latest reply request's arrival
        self._closed = False
        self._changed = threading.Condition()

    @property
    def closed(self) -> bool:
        with self._changed:
            return self._closed

    def has_room(self) -> bool:
        with self._changed:
            return not self._closed and self._has_room()

    def _has_room(self) -> bool:
        # Requests a free sequence takes at the next step are not waiting for one.
        return len(self._arrival) < self.capacity + self._free

    def hold_background(self, seconds: float) -> None:
        """A reply request has begun: start no background job for `seconds`, and tell
        the scheduler (`reply_expected`) to stop the one running."""
        with self._changed:
            now = time.monotonic()
            self._hold_until = max(self._hold_until, now + seconds)
            self._announced.append(now)

    def withdraw(self) -> None:
        """A reply request announced by `hold_background` will not arrive (refused, or
        sent to another engine): settle the oldest announcement, as `put` would."""
        with self._changed:
            if self._announced:
                self._announced.popleft()
                self._changed.notify_all()

    def announced(self) -> int:
        """Reply requests announced and not yet arrived nor withdrawn (nor forgotten)."""
        with self._changed:
            return len(self._announced)

    def gather(self, gap: float, most: float) -> None:
        """Wait while reply requests are announced and have not arrived (the scheduler,
        idle, about to start a burst's first step): until `gap` seconds pass without an
        arrival, or `most` seconds in all. A burst's sends reach the engine one after the
        other, each after its request path, so the wait follows them as they come."""
        began = time.monotonic()
        deadline = began + most
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                while self._announced and now - self._announced[0] > ANNOUNCED_FOR_S:
                    self._announced.popleft()
                until = min(deadline, max(began, self._last_arrival) + gap)
                if not self._announced or now >= until:
                    return
                self._changed.wait(until - now)

    def reply_expected(self) -> bool:
        """A reply waits, or a reply request has begun and background work is held."""
        with self._changed:
            return bool(self._arrival) or self._held()

    def _held(self) -> bool:
        return time.monotonic() < self._hold_until

    def waiting(self) -> int:
        """Requests waiting to be admitted (background ones not counted)."""
        with self._changed:
            return len(self._arrival)

    def put(self, job: Job) -> None:
        """Queue a job or raise at once: QueueFullError when full, EngineError when closed."""
        with self._changed:
            if self._closed:
                raise EngineError("the engine is not running")
            job.cancel_hook = self._cancelled
            if job.background:
                if len(self._background) >= self.capacity:
                    raise QueueFullError("too many background requests are waiting")
                self._background.append(job)
                self._changed.notify_all()
                return
            if not self._has_room():
                raise QueueFullError(
                    f"the request queue is full ({self.capacity} waiting); try again later"
                )
            self._arrival[job] = next(self._counter)
            self._last_arrival = time.monotonic()
            if self._announced:
                self._announced.popleft()
            self._by_user.setdefault(job.requester.user, deque()).append(job)
            self._announce()
            self._changed.notify_all()

    def requeue(self, job: Job) -> None:
        """Put a preempted background job back at the front of its queue (no bound: it
        held a place already), or finish it when it was cancelled or the queue closed."""
        with self._changed:
            if not (job.cancelled or self._closed):
                self._background.appendleft(job)
                self._changed.notify_all()
                return
        job.finish(GenerationResult(text="", finish_reason="cancelled"))

    def pop(self, *, background: bool = True, lane: int = 0) -> Job | None:
        """The next job in fair order that `lane` should take, or None when none is
        waiting for it; never blocks. A background job only when `background` (the
        scheduler says it has no reply) and no other lane has a live reply."""
        with self._changed:
            job = self._next_for(lane)
            free, live = self._lanes.get(lane, (0, 0))
            if job is None:
                if background and self._background and not self._held() and self._others_idle(lane):
                    self._lanes[lane] = (max(0, free - 1), live + 1)  # one at a time
                    return self._background.popleft()
                return None
            self._remove(job)
            self._free = max(0, self._free - 1)  # the scheduler pops only into a free one
            self._lanes[lane] = (max(0, free - 1), live + 1)
            user = job.requester.user
            self._served[user] = next(self._counter)
            self._served.move_to_end(user)
            if len(self._served) > REMEMBERED_USERS:
                self._served.popitem(last=False)
            self._announce()
            return job

    def _next_for(self, lane: int) -> Job | None:
        if len(self._lanes) <= 1:  # one scheduler: the fair order alone
            order = self._order(limit=1)
            return order[0] if order else None
        live = self._lanes.get(lane, (0, 0))[1]
        # Each lane's share of what is live and waiting: a lane takes a job without a
        # home only below its share, so a burst splits evenly even when one lane takes
        # from it before the other wakes (a job it left waits for the other's step).
        total = sum(busy for _, busy in self._lanes.values()) + len(self._arrival)
        share = -(-total // len(self._lanes))
        for job in self._order():
            home = job.home
            if home == lane:
                return job
            if home is not None and self._lanes.get(home, (0, 0))[0] > 0:
                continue  # its KV's lane will take it
            if live < share:
                return job
        return None

    def _others_idle(self, lane: int) -> bool:
        return all(live == 0 for other, (_, live) in self._lanes.items() if other != lane)

    def wait(self, timeout: float | None = None, *, lane: int = 0) -> bool:
        """Block until a job waits for `lane` or the queue closes (or `timeout`); False
        once closed. Held background jobs (`hold_background`) wake it when the hold
        ends; background jobs wait while another lane has a live reply."""
        with self._changed:
            if self._next_for(lane) is None and not self._closed:
                if not self._background or not self._others_idle(lane):
                    self._changed.wait(timeout)
                elif self._held():
                    left = self._hold_until - time.monotonic()
                    self._changed.wait(left if timeout is None else min(timeout, left))
            return not self._closed

    def set_free(self, free: int, *, lane: int = 0, live: int = 0) -> None:
        """A scheduler's count of its idle sequences (positions count from every lane's)
        and of its live replies (how lanes share the jobs)."""
        with self._changed:
            if len(self._lanes) > 1 and self._lanes.get(lane) != (free, live):
                self._changed.notify_all()  # another lane may take what this one left
            self._lanes[lane] = (free, live)
            total = sum(idle for idle, _ in self._lanes.values())
            if total != self._free:
                self._free = total
                self._announce()

    def close(self) -> list[Job]:
        """Refuse new jobs, wake the waiter, and hand back the jobs still waiting."""
        with self._changed:
            self._closed = True
            left = sorted(self._arrival, key=self._arrival.__getitem__) + list(self._background)
            self._by_user.clear()
            self._arrival.clear()
            self._background.clear()
            self._changed.notify_all()
            return left

    def _cancelled(self, job: Job) -> None:
        with self._changed:
            if job in self._background:
                self._background.remove(job)
            elif job in self._arrival:
                self._remove(job)
                self._announce()
            else:
                self._changed.notify_all()  # running: the scheduler sees the flag
                return
        job.finish(GenerationResult(text="", finish_reason="cancelled"))

    def _remove(self, job: Job) -> None:
        user = job.requester.user
        waiting = self._by_user[user]
        waiting.remove(job)
        if not waiting:
            del self._by_user[user]
        del self._arrival[job]

    def _order(self, limit: int | None = None) -> list[Job]:
        """Waiting jobs in the order they would be admitted if none arrived meanwhile."""
        heap = [
            (self._served.get(user, -1), self._arrival[jobs[0]], user)
            for user, jobs in self._by_user.items()
        ]
        heapq.heapify(heap)
        cursors = {user: 0 for user in self._by_user}
        order: list[Job] = []
        turn = itertools.count(_LATER)  # simulated admissions rank after every real one
        while heap and (limit is None or len(order) < limit):
            _, _, user = heapq.heappop(heap)
            jobs = self._by_user[user]
            order.append(jobs[cursors[user]])
            cursors[user] += 1
            if cursors[user] < len(jobs):
                heapq.heappush(heap, (next(turn), self._arrival[jobs[cursors[user]]], user))
        return order

    def _announce(self) -> None:
        for index, job in enumerate(self._order()):
            job.post_position(max(0, index + 1 - self._free))
