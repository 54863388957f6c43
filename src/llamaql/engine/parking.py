"""Host memory for the KV state of conversations whose sequence was needed by another.

A conversation's KV stays in its sequence after a reply; when the sequence goes to
another conversation, its state is parked here (bytes from `llama_state_seq_get_data`)
within a byte budget, least recently used first out, and restored into whichever sequence
the conversation's next turn gets. States are keyed by `Requester`: one user's state is
never offered to another user, nor to another conversation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from llamaql.engine.types import Requester


def common_prefix(held: Sequence[int], wanted: Sequence[int]) -> int:
    """How many leading tokens the two sequences share."""
    shared = 0
    for a, b in zip(held, wanted, strict=False):
        if a != b:
            break
        shared += 1
    return shared


@dataclass(frozen=True, slots=True, eq=False)
class ParkedState:
    """One sequence's serialized KV state and the tokens it holds, in order."""

    tokens: tuple[int, ...]
    state: bytearray

    @property
    def nbytes(self) -> int:
        return len(self.state)


class KVParking:
    """Parked states, one per requester, at most `capacity` bytes in all."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"KV parking capacity must not be negative, got {capacity} bytes")
        self.capacity = capacity
        self._states: OrderedDict[Requester, ParkedState] = OrderedDict()  # LRU first
        self._nbytes = 0

    def __len__(self) -> int:
        return len(self._states)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def park(self, owner: Requester, parked: ParkedState) -> bool:
        """Keep `parked` as `owner`'s state, evicting the least recently parked until it
        fits; False, keeping nothing for `owner`, when it alone exceeds the capacity."""
        self.take(owner)
        if parked.nbytes > self.capacity:
            return False
        while self._nbytes + parked.nbytes > self.capacity:
            _, evicted = self._states.popitem(last=False)
            self._nbytes -= evicted.nbytes
        self._states[owner] = parked
        self._nbytes += parked.nbytes
        return True

    def take(self, owner: Requester) -> ParkedState | None:
        """Remove and return `owner`'s state (restoring it consumes it)."""
        parked = self._states.pop(owner, None)
        if parked is not None:
            self._nbytes -= parked.nbytes
        return parked

    def clear(self) -> None:
        self._states.clear()
        self._nbytes = 0
