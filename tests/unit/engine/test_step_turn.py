"""StepTurn: the decodes of several models' schedulers never overlap, and they are
served in arrival order; the rest of a runtime passes through the wrapper."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from tests.fakes.native import FakeRuntime

from llamaql.engine.local.runtime import BatchPart
from llamaql.engine.local.step_turn import StepTurn, TurnTakingRuntime
from llamaql.ports.options import resolve_options
from llamaql.ports.values import SamplingOptions

WAIT = 10.0


class _Recording(FakeRuntime):
    """Records when each decode runs, to see whether two ever overlap."""

    def __init__(self, name: str, log: list[tuple[str, str]], lock: threading.Lock) -> None:
        super().__init__()
        self.name, self.log, self.lock = name, log, lock

    def decode(self, parts: Sequence[BatchPart]) -> int:
        with self.lock:
            self.log.append(("in", self.name))
        time.sleep(0.002)
        status = super().decode(parts)
        with self.lock:
            self.log.append(("out", self.name))
        return status


def test_two_models_decode_in_turn_never_at_once() -> None:
    turn, lock = StepTurn(), threading.Lock()
    log: list[tuple[str, str]] = []
    runtimes = [TurnTakingRuntime(_Recording(name, log, lock), turn) for name in "ab"]

    def steps(runtime: TurnTakingRuntime) -> None:
        for pos in range(20):
            assert runtime.decode([BatchPart(0, pos, (65,), wants_logits=True)]) == 0

    threads = [threading.Thread(target=steps, args=(r,)) for r in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(log) == 80
    # Every decode ends before the next begins.
    assert all(log[i][0] == "in" and log[i + 1] == ("out", log[i][1]) for i in range(0, 80, 2))


def test_the_turn_is_first_come_first_served() -> None:
    turn = StepTurn()
    served: list[int] = []
    turn.__enter__()  # held: three threads queue behind it, in a known order
    threads = []
    for index in range(3):

        def take(index: int = index) -> None:
            with turn:
                served.append(index)

        thread = threading.Thread(target=take)
        thread.start()
        threads.append(thread)
        time.sleep(0.05)  # each takes its ticket before the next starts
    turn.__exit__()
    for thread in threads:
        thread.join(WAIT)
    assert served == [0, 1, 2]


def test_everything_but_decode_passes_through() -> None:
    inner = FakeRuntime()
    runtime = TurnTakingRuntime(inner, StepTurn())
    assert runtime.facts is inner.facts
    assert runtime.tokenize("hi") == [104, 105]
    assert runtime.token_bytes(65) == b"A"
    assert runtime.is_eog(256)
    assert not runtime.is_eog(65)
    assert runtime.decode([BatchPart(1, 0, (1, 2, 3), wants_logits=True)]) == 0
    state = runtime.save(1)
    assert state == bytearray([1, 2, 3])
    assert state is not None
    assert runtime.truncate(1, 1)
    assert inner.kv[1] == [1]
    assert runtime.restore(1, state)
    assert inner.kv[1] == [1, 2, 3]
    sampler = runtime.new_sampler(resolve_options(SamplingOptions(), context_size=512))
    assert inner.admitted == [None]
    sampler.close()
    runtime.close()
