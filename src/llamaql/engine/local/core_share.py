"""The CPU's threads divided among the models decoding now.

Each loaded model has its own llama.cpp context, scheduler thread and OpenMP team. Two
teams of all the cores each would fight over them: llama.cpp's compute threads spin at
their barriers, and one preempted thread stalls its whole team (FINDINGS: spinning
threads). Taking turns (one decode at a time, every thread) avoids the fight but leaves
each team's barriers in every step. Measured with `python -m bench models` on 2 cores
(bench/results/README.md), two models on a core each gave 1.37x the total tok/s of one
model with the same load on both cores, and taking turns 0.89x. So the threads are
shared out: before each decode, a model's runtime asks how many threads it may use,
`threads // (models that decoded within the last RECENT_S)`, at least one; a model
decoding alone gets them all again once the other has been quiet that long, or at once
when the other's scheduler has no reply left (`idle`). Decode lanes (engine.py) share
the threads the same way: each lane's context counts as one decoding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from llamaql.engine.local.runtime import BatchPart, ModelRuntime, RuntimeFacts, Sampler
from llamaql.ports.engine import ResolvedOptions

# Longer than a step of any model on a busy CPU, so a model between two of its steps
# still counts as decoding.
RECENT_S = 0.5


class ThreadedRuntime(ModelRuntime, Protocol):
    """A runtime whose decode threads can change between decodes."""

    def set_threads(self, threads: int) -> None: ...


class CoreShare:
    """Who decoded recently, and each one's share of `threads`; any thread may ask."""

    def __init__(
        self,
        threads: int,
        *,
        recent_s: float = RECENT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threads = max(1, threads)
        self._recent_s = recent_s
        self._clock = clock
        self._last: dict[int, float] = {}  # a runtime's id -> when it last decoded
        self._lock = threading.Lock()

    def share(self, runtime: object) -> int:
        """The threads `runtime` may decode with now (it counts as decoding from now)."""
        now = self._clock()
        with self._lock:
            self._last[id(runtime)] = now
            decoding = sum(1 for at in self._last.values() if now - at <= self._recent_s)
        return max(1, self.threads // decoding)

    def leave(self, runtime: object) -> None:
        with self._lock:
            self._last.pop(id(runtime), None)


class SharedCoresRuntime:
    """A ModelRuntime that decodes on its CoreShare's share of the threads; the rest
    passes through."""

    def __init__(self, runtime: ThreadedRuntime, share: CoreShare) -> None:
        self._runtime = runtime
        self._share = share
        self._threads = runtime.facts.threads
        self.facts: RuntimeFacts = runtime.facts

    @property
    def threads(self) -> int:
        """The threads of its latest decode."""
        return self._threads

    def tokenize(self, text: str, special: bool = True, first: bool = True) -> list[int]:
        return self._runtime.tokenize(text, special, first)

    def token_bytes(self, token: int) -> bytes:
        return self._runtime.token_bytes(token)

    def is_eog(self, token: int) -> bool:
        return self._runtime.is_eog(token)

    def decode(self, parts: Sequence[BatchPart]) -> int:
        threads = min(self._share.share(self), self.facts.threads)
        if threads != self._threads:
            self._runtime.set_threads(threads)
            self._threads = threads
        return self._runtime.decode(parts)

    def truncate(self, seq: int, keep: int) -> bool:
        return self._runtime.truncate(seq, keep)

    def save(self, seq: int) -> bytearray | None:
        return self._runtime.save(seq)

    def restore(self, seq: int, state: bytearray) -> bool:
        return self._runtime.restore(seq, state)

    def new_sampler(self, options: ResolvedOptions) -> Sampler:
        return self._runtime.new_sampler(options)

    def busy(self) -> None:
        """Replies were admitted: the others count it as decoding from now, so a lane
        that starts its step first does not take the threads the other's step needs."""
        self._share.share(self)

    def idle(self) -> None:
        """Nothing to decode until the next reply: the others get its threads at once."""
        self._share.leave(self)

    def close(self) -> None:
        self._share.leave(self)
        self._runtime.close()
