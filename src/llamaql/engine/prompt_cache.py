"""Host-memory snapshots of the context's KV state, least recently used first.

The model has one context, so a conversation's history leaves it as soon as another
conversation takes a turn. The runtime keeps a snapshot of what it is about to drop and
restores the snapshot sharing the longest prefix with a later prompt; this LRU holds the
snapshots within a byte budget. It knows nothing of llama.cpp: a state is opaque bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def common_prefix(held: Sequence[int], wanted: Sequence[int]) -> int:
    """How many leading tokens the two sequences share."""
    shared = 0
    for a, b in zip(held, wanted, strict=False):
        if a != b:
            break
        shared += 1
    return shared


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """One sequence's serialized KV state and the tokens it holds, in order."""

    tokens: tuple[int, ...]
    state: bytearray

    @property
    def nbytes(self) -> int:
        return len(self.state)


def _starts_with(tokens: Sequence[int], prefix: Sequence[int]) -> bool:
    return len(prefix) <= len(tokens) and common_prefix(tokens, prefix) == len(prefix)


class PromptCache:
    """Snapshots holding at most `capacity` bytes in all, evicted least recently used first.

    A snapshot whose tokens begin another's adds nothing (restoring the longer one and
    dropping its tail gives the same state), so such snapshots are not kept.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"prompt cache capacity must be positive, got {capacity} bytes")
        self.capacity = capacity
        self._snapshots: list[Snapshot] = []  # least recently used first
        self._nbytes = 0

    def __len__(self) -> int:
        return len(self._snapshots)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def best_match(self, tokens: Sequence[int]) -> tuple[Snapshot, int] | None:
        """The snapshot sharing the longest prefix with `tokens`, and that length."""
        best: tuple[Snapshot, int] | None = None
        for snapshot in self._snapshots:
            shared = common_prefix(snapshot.tokens, tokens)
            if shared > 0 and (best is None or shared > best[1]):
                best = (snapshot, shared)
        return best

    def covers(self, tokens: Sequence[int]) -> bool:
        """Whether some snapshot already holds `tokens` (as all or the start of its own)."""
        return any(_starts_with(snapshot.tokens, tokens) for snapshot in self._snapshots)

    def put(self, snapshot: Snapshot) -> bool:
        """Keep `snapshot` as the most recent, dropping the snapshots it extends, then the
        least recently used until the rest fits; False, changing nothing, when it alone
        exceeds the capacity."""
        if snapshot.nbytes > self.capacity:
            return False
        kept = [s for s in self._snapshots if not _starts_with(snapshot.tokens, s.tokens)]
        kept.append(snapshot)
        total = sum(s.nbytes for s in kept)
        while total > self.capacity:
            total -= kept.pop(0).nbytes
        self._snapshots, self._nbytes = kept, total
        return True

    def touch(self, snapshot: Snapshot) -> None:
        """Mark `snapshot` as just used, if it is still kept."""
        if snapshot in self._snapshots:
            self._snapshots.remove(snapshot)
            self._snapshots.append(snapshot)

    def discard(self, snapshot: Snapshot) -> None:
        if snapshot in self._snapshots:
            self._snapshots.remove(snapshot)
            self._nbytes -= snapshot.nbytes

    def clear(self) -> None:
        self._snapshots.clear()
        self._nbytes = 0
