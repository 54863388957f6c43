"""Which llama.cpp sequence a request decodes in, and what KV each sequence keeps.

KV reuse is per conversation: a sequence keeps its conversation's KV after a reply; a new
request goes to the idle sequence its own conversation left (its KV moved to another idle
sequence if that one would leave a gap among the busy sequences), else takes an idle one
that leaves no gap (least recently used among those), whose state is first parked in
host memory and written to disk (`KVParking`). The one state shared across users holds
nothing any user wrote: the prompt start of every conversation with the server's default
system prompt, evaluated once at start. Used by `scheduler.BatchScheduler` on its thread.
"""

from __future__ import annotations

import itertools
import logging

from llamaql.engine.local.parking import KVParking, ParkedState, common_prefix
from llamaql.engine.local.reply import Slot
from llamaql.engine.local.runtime import BatchPart, ModelRuntime
from llamaql.ports.engine import Requester

logger = logging.getLogger(__name__)


class SequencePlacement:
    """The runtime's sequences (`slots`), their owners and the parked states."""

    def __init__(
        self,
        runtime: ModelRuntime,
        parking: KVParking,
        shared_prefix: tuple[int, ...],
        *,
        lane: int = 0,
    ) -> None:
        self._runtime = runtime
        self._lane = lane
        self._parking = parking
        self._shared_prefix = shared_prefix
        self._shared_state: bytearray | None = None
        self.slots = [Slot(seq) for seq in range(runtime.facts.sequences)]
        self._clock = itertools.count(1)

    def tick(self) -> int:
        """The next use time (a sequence's `last_used`)."""
        return next(self._clock)

    def evaluate_shared_prefix(self) -> None:
        prefix, seq = self._shared_prefix, self.slots[0].seq
        if not prefix:
            return
        size = self._runtime.facts.batch_size
        for start in range(0, len(prefix), size):
            part = BatchPart(seq, start, prefix[start : start + size], wants_logits=False)
            status = self._runtime.decode([part])
            if status != 0:
                logger.warning("could not evaluate the shared prompt start (status %d)", status)
                self._runtime.truncate(seq, 0)
                return
        self._shared_state = self._runtime.save(seq)
        self._runtime.truncate(seq, 0)
        logger.debug("new conversations start from a shared %d-token prompt start", len(prefix))

    def place(self, owner: Requester, tokens: tuple[int, ...]) -> tuple[Slot, int]:
        """The idle sequence `owner`'s prompt `tokens` go to, and how many of them its KV
        already holds (always fewer than all: the last gives the first reply token)."""
        own = self._own_slot(owner)
        slot = self._free_slot(owner) if own is None else self._close_gap(own)
        if not slot.tokens:
            self._start_from_shared_prefix(slot, tokens)
        # The last prompt token is always evaluated: its logits give the first reply token.
        keep = min(common_prefix(slot.tokens, tokens), len(tokens) - 1)
        if keep < len(slot.tokens) and not self._runtime.truncate(slot.seq, keep):
            self._runtime.truncate(slot.seq, 0)
            keep = 0
        del slot.tokens[keep:]
        slot.owner = owner
        slot.last_used = self.tick()
        return slot, keep

    def _start_from_shared_prefix(self, slot: Slot, tokens: tuple[int, ...]) -> None:
        prefix, state = self._shared_prefix, self._shared_state
        if state is None or len(tokens) <= len(prefix) or tokens[: len(prefix)] != prefix:
            return
        if self._runtime.restore(slot.seq, state):
            slot.tokens = list(prefix)

    def holds(self, owner: Requester) -> bool:
        """Whether an idle sequence holds `owner`'s KV (any thread: a hint, read without
        a lock, for which lane a request goes to)."""
        return any(slot.reply is None and slot.owner == owner for slot in self.slots)

    def _own_slot(self, owner: Requester) -> Slot | None:
        for slot in self.slots:
            if slot.reply is None and slot.owner == owner:
                return slot
        return None

    def _free_slot(self, owner: Requester) -> Slot:
        """An idle slot, its state parked, holding `owner`'s parked state if there is one.

        The slot keeps the busy sequences in the fewest runs of consecutive ids, since
        each run is a graph evaluation of its own in every step (see `_step`); among
        those, the one used least recently. A conversation whose KV goes is parked, and
        restoring it is a copy, where a broken run costs every step of every reply."""
        slot = self._best_idle(self._busy())
        self._empty(slot)
        parked = self._parking.take(owner)
        if parked is not None:
            if self._runtime.restore(slot.seq, parked.state):
                slot.tokens = list(parked.tokens)
                logger.debug("restored %d tokens into sequence %d", len(slot.tokens), slot.seq)
            else:
                self._parking.discard(owner)  # llama.cpp refused it: never offer it again
        return slot

    def _close_gap(self, own: Slot) -> Slot:
        """`own` (the conversation's idle sequence), or the idle sequence its KV moves to
        when `own` would split the busy sequences into more runs than that one."""
        busy = self._busy()
        target = self._best_idle(busy)
        if _runs(busy | {own.seq}) <= _runs(busy | {target.seq}):
            return own
        state = self._runtime.save(own.seq)
        if state is None:
            return own
        self._empty(target)
        if not self._runtime.restore(target.seq, state):
            self._runtime.truncate(target.seq, 0)
            return own  # a save leaves the sequence as it was: `own` still holds its KV
        target.owner, target.tokens = own.owner, own.tokens
        self._runtime.truncate(own.seq, 0)
        own.owner, own.tokens, own.last_used = None, [], 0
        logger.debug(
            "moved %d tokens from sequence %d to %d", len(target.tokens), own.seq, target.seq
        )
        return target

    def _busy(self) -> set[int]:
        return {s.seq for s in self.slots if s.reply is not None}

    def _best_idle(self, busy: set[int]) -> Slot:
        return min(
            (s for s in self.slots if s.reply is None),
            key=lambda s: (_runs(busy | {s.seq}), s.last_used),
        )

    def _empty(self, slot: Slot) -> None:
        """Park what `slot` holds for its conversation, then clear it."""
        if slot.owner is not None and slot.tokens:
            self._park(slot)
        self._runtime.truncate(slot.seq, 0)
        slot.owner, slot.tokens = None, []

    def _park(self, slot: Slot) -> None:
        if slot.owner is None or not self._parking.enabled:
            return
        state = self._runtime.save(slot.seq)
        if state is None:
            return
        if not self._parking.park(slot.owner, ParkedState(tuple(slot.tokens), state)):
            logger.debug("a %d-byte KV state was kept neither in memory nor on disk", len(state))

    def drop_forgotten(self) -> None:
        """Empty the idle sequences of forgotten (deleted) conversations; one still
        generating (its cancel not yet seen) is looked at again next time."""
        for owner in self._parking.forgotten(self._lane):
            for slot in self.slots:
                if slot.owner != owner:
                    continue
                if slot.reply is not None:
                    self._parking.forget(owner)
                else:
                    self._runtime.truncate(slot.seq, 0)
                    slot.owner, slot.tokens, slot.last_used = None, [], 0

    def persist_sequences(self) -> None:
        """As the engine stops: write each conversation's KV that a sequence holds to
        disk, least recently used first, so the newest is the last a full disk evicts."""
        self.drop_forgotten()
        if self._parking.files is None:
            return
        for slot in sorted(self.slots, key=lambda s: s.last_used):
            if slot.owner is None or not slot.tokens:
                continue
            state = self._runtime.save(slot.seq)
            if state is not None:
                self._parking.persist(slot.owner, ParkedState(tuple(slot.tokens), state))


def _runs(seqs: set[int]) -> int:
    """How many runs of consecutive ids `seqs` makes."""
    return sum(1 for seq in seqs if seq - 1 not in seqs)
