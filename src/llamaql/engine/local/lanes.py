"""Decode lanes: one model's sequences split over several llama.cpp contexts that decode
at the same time, each on its share of the CPU threads.

Why: one context's compute threads meet at a barrier after every operation of every
layer, spinning there, so any other work on the machine (the server's event loop, a
client on the same host) that preempts one of them stalls the whole team, and a small
model's operations are short enough that the barriers cost a large part of each step.
Contexts of their own threads share no barrier: on 2 cores, two models on a core each
decoded 1.37x the tokens of one model on both cores with the same replies (`python -m
bench models`, bench/results/README.md), and two lanes of one model do the same for
one model's replies (`python -m bench peer`, same file).

A step's parts go to the lanes holding their sequences (lane i holds global sequences
`i * per_lane` to `(i + 1) * per_lane - 1`). The lanes with parts decode at once (llama.cpp
releases the GIL), each on `threads // busy lanes` threads; a lane decoding alone gets
every thread. A step that fails in one lane is undone in the others (the tokens it added
truncated), so it fails as one batch does: every sequence holds what it held before.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

from llamaql.engine.local.runtime import BatchPart


class Lane(Protocol):
    """What DecodeLanes drives in each lane (`llama_context.LlamaContext`); its sequence
    ids are its own."""

    def decode(self, parts: Sequence[BatchPart]) -> int: ...

    def set_threads(self, threads: int) -> None: ...

    def truncate(self, seq: int, keep: int) -> bool: ...


L = TypeVar("L", bound=Lane)


def lane_sizes(sequences: int, lanes: int) -> list[int]:
    """The sequences of each lane: `sequences` in at most `lanes` lanes of one size. Lanes
    are never uneven: a sequence's saved state records its context's stream count, and
    llama.cpp refuses it in a context of another (`n_stream mismatch`), so a conversation's
    KV moves between lanes only when they are alike."""
    count = max(n for n in range(1, max(1, min(lanes, sequences)) + 1) if sequences % n == 0)
    return [sequences // count] * count


class DecodeLanes(Generic[L]):
    """The lanes of one model, used by the scheduler's thread; see the module docstring."""

    def __init__(self, lanes: Sequence[L], per_lane: int, threads: int) -> None:
        self.lanes = list(lanes)
        self.per_lane = per_lane
        self.threads = max(1, threads)
        # Batch row of the latest decode -> (lane index, its row in that lane's batch),
        # for the rows that have logits; None: one lane, rows are its own.
        self._rows: dict[int, tuple[int, int]] | None = None
        self._pool = (
            ThreadPoolExecutor(len(self.lanes) - 1, thread_name_prefix="llamaql-lane")
            if len(self.lanes) > 1
            else None
        )

    def lane(self, seq: int) -> tuple[L, int]:
        """The lane holding global sequence `seq`, and its id there."""
        return self.lanes[seq // self.per_lane], seq % self.per_lane

    def locate(self, row: int) -> tuple[L, int]:
        """The lane whose latest decode computed batch row `row`'s logits, and its row."""
        if self._rows is None:
            return self.lanes[0], row
        index, local = self._rows[row]
        return self.lanes[index], local

    def decode(self, parts: Sequence[BatchPart]) -> int:
        if self._pool is None:
            self.lanes[0].set_threads(self.threads)
            self._rows = None
            return self.lanes[0].decode(parts)
        by_lane: dict[int, list[BatchPart]] = {}
        rows: dict[int, tuple[int, int]] = {}
        filled = [0] * len(self.lanes)
        row = 0
        for part in parts:
            index, local = divmod(part.seq, self.per_lane)
            by_lane.setdefault(index, []).append(
                BatchPart(local, part.pos, part.tokens, part.wants_logits)
            )
            row += len(part.tokens)
            filled[index] += len(part.tokens)
            if part.wants_logits:
                rows[row - 1] = (index, filled[index] - 1)
        statuses = self._decode_lanes(by_lane)
        failed = [status for status in statuses.values() if status != 0]
        if failed:
            for index, status in statuses.items():
                if status == 0:  # undo what this lane added: the step fails as a whole
                    for part in by_lane[index]:
                        self.lanes[index].truncate(part.seq, part.pos)
            self._rows = None
            return failed[0]
        self._rows = rows
        return 0

    def _decode_lanes(self, by_lane: dict[int, list[BatchPart]]) -> dict[int, int]:
        busy = sorted(by_lane)
        share, extra = divmod(self.threads, len(busy))
        for rank, index in enumerate(busy):
            self.lanes[index].set_threads(max(1, share + (1 if rank < extra else 0)))
        if share == 0 or self._pool is None:  # fewer threads than busy lanes: in turn
            return {index: self.lanes[index].decode(by_lane[index]) for index in busy}
        first, *others = busy
        running: dict[int, Future[int]] = {
            index: self._pool.submit(self.lanes[index].decode, by_lane[index]) for index in others
        }
        statuses = {first: self.lanes[first].decode(by_lane[first])}
        for index, future in running.items():
            statuses[index] = future.result()
        return statuses

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
