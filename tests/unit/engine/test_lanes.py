"""DecodeLanes on fake lanes: a step split by lane, decoded at once on shared threads,
rows located for sampling, and a step failing in one lane undone in the others."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from llamaql.engine.local.lanes import DecodeLanes, lane_sizes
from llamaql.engine.local.runtime import BatchPart


class FakeLane:
    def __init__(self, status: int = 0) -> None:
        self.status = status
        self.threads = 0
        self.batches: list[list[BatchPart]] = []
        self.truncated: list[tuple[int, int]] = []
        self.decoded_on: set[str] = set()
        self.entered: threading.Barrier | None = None

    def decode(self, parts: Sequence[BatchPart]) -> int:
        self.batches.append(list(parts))
        self.decoded_on.add(threading.current_thread().name)
        if self.entered is not None:
            self.entered.wait(5)  # both lanes inside decode at once, or this times out
        return self.status

    def set_threads(self, threads: int) -> None:
        self.threads = threads

    def truncate(self, seq: int, keep: int) -> bool:
        self.truncated.append((seq, keep))
        return True


def part(seq: int, pos: int, count: int, logits: bool = True) -> BatchPart:
    return BatchPart(seq, pos, tuple(range(count)), wants_logits=logits)


@pytest.mark.parametrize(
    ("sequences", "lanes", "sizes"),
    [(8, 2, [4, 4]), (5, 2, [5]), (6, 4, [2, 2, 2]), (1, 2, [1]), (4, 1, [4]), (3, 8, [1, 1, 1])],
)
def test_lanes_are_alike_and_never_empty(sequences: int, lanes: int, sizes: list[int]) -> None:
    assert lane_sizes(sequences, lanes) == sizes


def test_a_step_goes_to_the_lanes_of_its_sequences_with_their_own_ids() -> None:
    a, b = FakeLane(), FakeLane()
    lanes = DecodeLanes([a, b], per_lane=2, threads=2)
    status = lanes.decode([part(0, 5, 1), part(1, 0, 3, logits=False), part(3, 9, 1)])
    assert status == 0
    assert a.batches == [[part(0, 5, 1), part(1, 0, 3, logits=False)]]
    assert b.batches == [[part(1, 9, 1)]]
    # Global rows with logits: 0 (seq 0) and 4 (seq 3) -> each lane's own row.
    assert lanes.locate(0) == (a, 0)
    assert lanes.locate(4) == (b, 0)
    lanes.close()


def test_busy_lanes_decode_at_once_on_a_share_of_the_threads() -> None:
    a, b = FakeLane(), FakeLane()
    both = threading.Barrier(2)
    a.entered = b.entered = both
    lanes = DecodeLanes([a, b], per_lane=4, threads=3)
    assert lanes.decode([part(0, 0, 1), part(4, 0, 1)]) == 0
    assert (a.threads, b.threads) == (2, 1)
    assert a.decoded_on.isdisjoint(b.decoded_on)
    lanes.close()


def test_a_lane_decoding_alone_gets_every_thread() -> None:
    a, b = FakeLane(), FakeLane()
    lanes = DecodeLanes([a, b], per_lane=4, threads=2)
    lanes.decode([part(5, 0, 1), part(6, 0, 1)])
    assert b.threads == 2
    assert a.batches == []
    assert lanes.locate(1) == (b, 1)
    lanes.close()


def test_lanes_take_turns_when_they_outnumber_the_threads() -> None:
    # A CoreShare gave this model one thread: two lanes at once would oversubscribe it.
    a, b = FakeLane(), FakeLane()
    lanes = DecodeLanes([a, b], per_lane=4, threads=1)
    assert lanes.decode([part(0, 0, 1), part(4, 1, 1)]) == 0
    assert (a.threads, b.threads) == (1, 1)
    here = {threading.current_thread().name}
    assert a.decoded_on == here
    assert b.decoded_on == here
    lanes.close()


def test_a_step_failing_in_one_lane_is_undone_in_the_others() -> None:
    a, b = FakeLane(), FakeLane(status=1)
    lanes = DecodeLanes([a, b], per_lane=2, threads=2)
    assert lanes.decode([part(0, 7, 1), part(1, 3, 4, logits=False), part(2, 0, 2)]) == 1
    # Lane a decoded its parts: they are truncated back to where they started.
    assert a.truncated == [(0, 7), (1, 3)]
    assert b.truncated == []
    lanes.close()


def test_one_lane_passes_rows_through() -> None:
    a = FakeLane()
    lanes = DecodeLanes([a], per_lane=4, threads=2)
    assert lanes.decode([part(2, 0, 3)]) == 0
    assert a.batches == [[part(2, 0, 3)]]
    assert a.threads == 2
    assert lanes.locate(2) == (a, 2)
    lanes.close()
