"""A ModelRuntime (engine/local/runtime.py) in Python: the native seam without a model.

Tokens are bytes (256 ends a reply). Each sequence's KV is a list of tokens; `decode`
checks that every part starts where its sequence ends (a scheduler bug fails loudly),
records each batch, and can be held (`gate`) or made to fail for sequences holding a
marker. A sampler replies with `replies[seed]` (else `reply`), one byte per sample;
`admitted` lists the seed of each reply as it joins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from tests.eventually import eventually_blocking

from llamaql.engine.local.runtime import BatchPart, RuntimeFacts
from llamaql.ports.engine import ResolvedOptions

EOG = 256
WAIT = 10.0


class FakeSampler:
    def __init__(self, runtime: FakeRuntime, text: str) -> None:
        self._runtime = runtime
        self._reply = iter(text.encode())
        self.closed = False

    def sample(self, index: int) -> int:
        assert index in self._runtime.logit_rows, f"row {index} has no logits"
        self._runtime.samples += 1
        if self._runtime.on_sample is not None:
            self._runtime.on_sample(self._runtime.samples)
        return next(self._reply, EOG)

    def close(self) -> None:
        self.closed = True


class FakeRuntime:
    """Sequences of byte tokens; see the module docstring."""

    def __init__(self, *, sequences: int = 2, batch_size: int = 64, context: int = 512) -> None:
        self.facts = RuntimeFacts(
            context_size=context,
            sequences=sequences,
            batch_size=batch_size,
            backend="cpu",
            device="fake",
            gpu_layers=0,
            threads=1,
            kv_bytes=0,
        )
        self.kv: dict[int, list[int]] = {seq: [] for seq in range(sequences)}
        self.batches: list[list[BatchPart]] = []
        self.logit_rows: set[int] = set()
        self.reply = "hello"
        self.replies: dict[int, str] = {}
        self.gate = threading.Event()  # cleared: decode waits
        self.gate.set()
        self.fail_marker: bytes | None = None
        self.on_sample: Callable[[int], None] | None = None
        self.samples = 0
        self.admitted: list[int | None] = []  # each new reply's seed, in admission order
        self.saves = 0
        self.restores = 0

    def tokenize(self, text: str, special: bool = True, first: bool = True) -> list[int]:
        return list(text.encode())

    def token_bytes(self, token: int) -> bytes:
        return bytes([token])

    def is_eog(self, token: int) -> bool:
        return token == EOG

    def decode(self, parts: Sequence[BatchPart]) -> int:
        assert self.gate.wait(WAIT), "decode held too long"
        assert sum(len(p.tokens) for p in parts) <= self.facts.batch_size
        assert len({p.seq for p in parts}) == len(parts), "a sequence twice in one batch"
        for part in parts:
            assert part.pos == len(self.kv[part.seq]), "a part does not continue its sequence"
        if self.fail_marker is not None and any(
            self.fail_marker in bytes(self.kv[p.seq] + list(p.tokens)) for p in parts
        ):
            return 1
        rows, index = set(), 0
        for part in parts:
            self.kv[part.seq].extend(part.tokens)
            index += len(part.tokens)
            if part.wants_logits:
                rows.add(index - 1)
        self.logit_rows = rows
        self.batches.append(list(parts))
        return 0

    def truncate(self, seq: int, keep: int) -> bool:
        del self.kv[seq][keep:]
        return True

    def save(self, seq: int) -> bytearray | None:
        self.saves += 1
        return bytearray(self.kv[seq])

    def restore(self, seq: int, state: bytearray) -> bool:
        self.restores += 1
        self.kv[seq] = list(state)
        return True

    def new_sampler(self, options: ResolvedOptions) -> FakeSampler:
        self.admitted.append(options.seed)
        text = self.reply if options.seed is None else self.replies.get(options.seed, self.reply)
        return FakeSampler(self, text)

    def busy(self) -> None:
        pass

    def idle(self) -> None:
        pass

    def close(self) -> None:
        pass

    # For tests.

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        """Poll `predicate` (the scheduler's thread changes what it reads) until it holds;
        fails (tests/eventually.py) when it never does."""
        return eventually_blocking(predicate, timeout, what="the runtime's condition")
