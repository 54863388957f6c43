"""CoreShare: the threads divided among the models that decoded recently, all of them
for a model alone; SharedCoresRuntime applies its share before each decode and passes
the rest through."""

from __future__ import annotations

from dataclasses import replace

from tests.fakes.native import FakeRuntime

from llamaql.engine.local.core_share import CoreShare, SharedCoresRuntime
from llamaql.engine.local.runtime import BatchPart
from llamaql.ports.options import resolve_options
from llamaql.ports.values import SamplingOptions


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Threaded(FakeRuntime):
    """A fake runtime on 4 threads that records each change of its threads."""

    def __init__(self) -> None:
        super().__init__()
        self.facts = replace(self.facts, threads=4)
        self.set_to: list[int] = []

    def set_threads(self, threads: int) -> None:
        self.set_to.append(threads)


def step(runtime: SharedCoresRuntime, pos: int) -> None:
    assert runtime.decode([BatchPart(0, pos, (65,), wants_logits=True)]) == 0


def test_two_models_decoding_get_half_the_threads_each_and_one_alone_gets_all() -> None:
    clock = Clock()
    share = CoreShare(4, recent_s=0.5, clock=clock)
    a_inner, b_inner = Threaded(), Threaded()
    a, b = SharedCoresRuntime(a_inner, share), SharedCoresRuntime(b_inner, share)
    step(a, 0)
    assert a.threads == 4  # alone: every thread, and no change to make
    assert a_inner.set_to == []
    clock.now = 0.1
    step(b, 0)
    assert b.threads == 2
    clock.now = 0.2
    step(a, 1)
    assert a.threads == 2
    assert (a_inner.set_to, b_inner.set_to) == ([2], [2])
    # b stops decoding; once it has been quiet for recent_s, a takes every thread again.
    clock.now = 0.5
    step(a, 2)
    assert a.threads == 2
    clock.now = 0.7
    step(a, 3)
    assert a.threads == 4
    assert a_inner.set_to == [2, 4]
    # A closed runtime no longer counts, however recently it decoded.
    step(b, 1)
    b.close()
    step(a, 4)
    assert a.threads == 4


def test_a_share_is_never_below_one_thread_nor_above_the_runtimes_own() -> None:
    clock = Clock()
    share = CoreShare(2, clock=clock)
    runtimes = [SharedCoresRuntime(Threaded(), share) for _ in range(3)]
    for runtime in runtimes:
        step(runtime, 0)
    assert [runtime.threads for runtime in runtimes] == [2, 1, 1]
    wide = CoreShare(16, clock=clock)
    alone = SharedCoresRuntime(Threaded(), wide)
    step(alone, 0)
    assert alone.threads == 4  # its model was loaded with 4


def test_everything_but_decode_passes_through() -> None:
    inner = Threaded()
    runtime = SharedCoresRuntime(inner, CoreShare(4))
    assert runtime.facts is inner.facts
    assert runtime.tokenize("hi") == [104, 105]
    assert runtime.token_bytes(65) == b"A"
    assert runtime.is_eog(256)
    assert not runtime.is_eog(65)
    assert runtime.decode([BatchPart(1, 0, (1, 2, 3), wants_logits=True)]) == 0
    state = runtime.save(1)
    assert state == bytearray([1, 2, 3])
    assert runtime.truncate(1, 1)
    assert inner.kv[1] == [1]
    assert runtime.restore(1, state)
    assert inner.kv[1] == [1, 2, 3]
    sampler = runtime.new_sampler(resolve_options(SamplingOptions(), context_size=512))
    assert inner.admitted == [None]
    sampler.close()
    runtime.close()


def test_an_idle_runtime_gives_its_threads_back_at_once() -> None:
    clock = Clock()
    share = CoreShare(4, recent_s=0.5, clock=clock)
    a, b = SharedCoresRuntime(Threaded(), share), SharedCoresRuntime(Threaded(), share)
    step(a, 0)
    step(b, 0)
    assert b.threads == 2
    b.idle()  # its scheduler has no reply left
    clock.now = 0.01
    step(a, 1)
    assert a.threads == 4


def test_a_runtime_with_replies_admitted_counts_before_its_first_decode() -> None:
    clock = Clock()
    share = CoreShare(4, recent_s=0.5, clock=clock)
    a, b = SharedCoresRuntime(Threaded(), share), SharedCoresRuntime(Threaded(), share)
    b.busy()  # admitted a burst's replies, gathering the rest before its first step
    step(a, 0)
    assert a.threads == 2
