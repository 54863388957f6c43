"""One decode at a time across loaded models: a fair turn that every model's scheduler
takes around `llama_decode`.

Two models decoding at once on a CPU start two OpenMP teams whose threads spin at their
barriers and take the cores from each other (FINDINGS: spinning threads). With a turn,
each decode still uses every thread, the models alternate step by step in arrival order
(a ticket lock, so neither starves), and a model alone takes it uncontended.
`python -m bench models` measures this design (see bench/results/README.md).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from llamaql.engine.local.runtime import BatchPart, ModelRuntime, RuntimeFacts, Sampler
from llamaql.ports.engine import ResolvedOptions


class StepTurn:
    """A fair (first come, first served) lock over decode steps, for any threads."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._changed:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._changed.wait()

    def __exit__(self, *_: object) -> None:
        with self._changed:
            self._serving += 1
            self._changed.notify_all()


class TurnTakingRuntime:
    """A ModelRuntime whose decodes take the shared StepTurn; the rest passes through."""

    def __init__(self, runtime: ModelRuntime, turn: StepTurn) -> None:
        self._runtime = runtime
        self._turn = turn
        self.facts: RuntimeFacts = runtime.facts

    def tokenize(self, text: str, special: bool = True, first: bool = True) -> list[int]:
        return self._runtime.tokenize(text, special, first)

    def token_bytes(self, token: int) -> bytes:
        return self._runtime.token_bytes(token)

    def is_eog(self, token: int) -> bool:
        return self._runtime.is_eog(token)

    def decode(self, parts: Sequence[BatchPart]) -> int:
        with self._turn:
            return self._runtime.decode(parts)

    def truncate(self, seq: int, keep: int) -> bool:
        return self._runtime.truncate(seq, keep)

    def save(self, seq: int) -> bytearray | None:
        return self._runtime.save(seq)

    def restore(self, seq: int, state: bytearray) -> bool:
        return self._runtime.restore(seq, state)

    def new_sampler(self, options: ResolvedOptions) -> Sampler:
        return self._runtime.new_sampler(options)

    def close(self) -> None:
        self._runtime.close()
