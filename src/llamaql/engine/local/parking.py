"""Host memory for the KV state of conversations whose sequence was needed by another.

A conversation's KV stays in its sequence after a reply; when the sequence goes to
another conversation, its state is parked here (bytes from `llama_state_seq_get_data`)
within a byte budget, least recently used first out, and restored into whichever sequence
the conversation's next turn gets. With KV files on (`LLAMAQL_KV_DIR`), every parked
state is also written to disk on the writer's thread (engine/local/kv_writer.py), and a state
not in memory is read back from its file, so it outlives eviction and restarts. States
are keyed by `Requester`: one user's state is never offered to another user, nor to
another conversation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llamaql.ports.engine import Requester

if TYPE_CHECKING:
    from llamaql.engine.local.kv_writer import KVFileWriter


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
    """Parked states, one per requester, at most `capacity` bytes in memory, and on disk
    through `files` when given.

    The scheduler's thread parks and takes; `forget` may be called from any thread.
    """

    def __init__(self, capacity: int, files: KVFileWriter | None = None) -> None:
        if capacity < 0:
            raise ValueError(f"KV parking capacity must not be negative, got {capacity} bytes")
        self.capacity = capacity
        self.files = files
        self._states: OrderedDict[Requester, ParkedState] = OrderedDict()  # LRU first
        self._nbytes = 0
        self._lock = threading.Lock()
        # Forgotten since each lane's scheduler last looked (lane -> owners): never park
        # these again until every lane has.
        self._forgotten: dict[int, set[Requester]] = {0: set()}

    def add_lanes(self, lanes: int) -> None:
        """Schedulers 0 .. lanes-1 each look at what was forgotten (`forgotten`)."""
        with self._lock:
            for lane in range(lanes):
                self._forgotten.setdefault(lane, set())

    def _is_forgotten(self, owner: Requester) -> bool:
        return any(owner in owners for owners in self._forgotten.values())

    def __len__(self) -> int:
        return len(self._states)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    @property
    def enabled(self) -> bool:
        """Whether parking keeps anything (in memory or on disk)."""
        return self.capacity > 0 or self.files is not None

    def park(self, owner: Requester, parked: ParkedState) -> bool:
        """Keep `parked` as `owner`'s state, in memory (evicting the least recently
        parked until it fits) and on disk; False when it was kept nowhere."""
        with self._lock:
            if self._is_forgotten(owner):
                return False
            self._pop(owner)
            in_memory = parked.nbytes <= self.capacity
            if in_memory:
                while self._nbytes + parked.nbytes > self.capacity:
                    _, evicted = self._states.popitem(last=False)
                    self._nbytes -= evicted.nbytes
                self._states[owner] = parked
                self._nbytes += parked.nbytes
        on_disk = self.files is not None and self.files.put(owner, parked)
        return in_memory or on_disk

    def take(self, owner: Requester) -> ParkedState | None:
        """Remove and return `owner`'s state from memory (restoring it consumes it), else
        read it from disk (its file stays, for a later restart)."""
        with self._lock:
            parked = self._pop(owner)
        if parked is None and self.files is not None:
            parked = self.files.load(owner)
        return parked

    def persist(self, owner: Requester, parked: ParkedState) -> bool:
        """Write a state to disk only (a sequence's KV as the engine stops), waiting for
        room in the writer's queue; False with KV files off."""
        with self._lock:
            if self._is_forgotten(owner):
                return False
        return self.files is not None and self.files.put(owner, parked, wait=True)

    def forget(self, owner: Requester) -> None:
        """Drop `owner`'s state from memory and disk; the scheduler then drops what its
        sequences hold for `owner` (see `forgotten`). Any thread."""
        with self._lock:
            self._pop(owner)
            for owners in self._forgotten.values():
                owners.add(owner)
        if self.files is not None:
            self.files.delete(owner)

    def discard(self, owner: Requester) -> None:
        """Delete `owner`'s file (llama.cpp refused its state: never offer it again)."""
        if self.files is not None:
            self.files.delete(owner)

    def forgotten(self, lane: int = 0) -> set[Requester]:
        """The requesters forgotten since `lane`'s last call (for its scheduler's thread)."""
        with self._lock:
            owners = self._forgotten.get(lane, set())
            self._forgotten[lane] = set()
        return owners

    def _pop(self, owner: Requester) -> ParkedState | None:
        parked = self._states.pop(owner, None)
        if parked is not None:
            self._nbytes -= parked.nbytes
        return parked

    def clear(self) -> None:
        """Drop what memory holds, and write what waits for the disk."""
        with self._lock:
            self._states.clear()
            self._nbytes = 0
        if self.files is not None:
            self.files.close()
