"""Continuous batching: the scheduler thread that decodes every live reply together.

Each step is one llama.cpp batch: a single token for every reply that is generating, then
prompt chunks of replies that are joining, within the batch size. Replies join (from the
fair admission queue) and leave (finished, failed, cancelled) between steps, so a
cancel takes effect within one step. A failed batch is retried reply by reply, so a
failure in one sequence fails that reply alone.

KV reuse is per conversation: a sequence keeps its conversation's KV after a reply; a new
request goes to the idle sequence its own conversation left (its KV copied to another
idle sequence if that one would leave a gap among the busy sequences), else takes an idle
one that leaves no gap (least recently used among those), whose state is first parked in
host memory and written to disk (`KVParking`; at a clean stop every sequence's state is
written too, so a conversation's next turn after a restart reuses it). Only
the same requester's KV is ever reused; a background request's is dropped when it ends.
Background requests (titles) run only on an idle engine, one at a time, their prompts in
small steps, and yield the moment a reply waits: they never hold a sequence or a step that
a reply could use, and a reply's wait for the step under way is short.
The one exception holds nothing any user wrote: the prompt start that every conversation
with the server's default system prompt shares (template markup and that prompt) is
evaluated once, and a new conversation's sequence starts from a copy of it, so all users
see the same cached count for it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

from llamaql.engine.admission import AdmissionQueue
from llamaql.engine.jobs import Job
from llamaql.engine.parking import KVParking, ParkedState, common_prefix
from llamaql.engine.reply import Reply, Slot
from llamaql.engine.runtime import BatchPart, ModelRuntime
from llamaql.engine.types import EngineError, FinishReason, Requester

logger = logging.getLogger(__name__)
# Prompt tokens a background request evaluates per step (~20 ms of the default model on
# two cores, against ~130 ms for a whole 200-token title prompt in one step).
BACKGROUND_CHUNK = 32


class BatchScheduler:
    """Owns the runtime's sequences on one thread; `run()` is that thread's body."""

    def __init__(
        self,
        runtime: ModelRuntime,
        queue: AdmissionQueue,
        parking: KVParking,
        *,
        extra_stops: tuple[str, ...] = (),
        shared_prefix: tuple[int, ...] = (),
    ) -> None:
        self._runtime = runtime
        self._shared_prefix = shared_prefix
        self._shared_state: bytearray | None = None
        self._queue = queue
        self._parking = parking
        self._extra_stops = extra_stops
        self._slots = [Slot(seq) for seq in range(runtime.facts.sequences)]
        self._clock = itertools.count(1)
        self._live: list[Reply] = []  # in admission order
        # len(self._live), kept as a plain int so other threads read it without a lock.
        self.active = 0
        queue.set_free(len(self._slots))

    def run(self) -> None:
        """Admit, step, repeat; returns once the queue is closed and no reply is live."""
        self._evaluate_shared_prefix()
        while True:
            self._end_cancelled()
            if not self._live and not self._queue.wait():
                break
            self._drop_forgotten()
            self._admit()
            if self._live:
                try:
                    self._step()
                except Exception as exc:  # a bug, not a llama.cpp status: fail what is live
                    logger.exception("decode step failed")
                    for reply in list(self._live):
                        self._fail(reply, _engine_error(exc))
        self._persist_sequences()
        logger.debug("engine scheduler stopped")

    def _evaluate_shared_prefix(self) -> None:
        prefix, seq = self._shared_prefix, self._slots[0].seq
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

    # Admission and KV placement.

    def _admit(self) -> None:
        self._preempt_background()
        while any(slot.reply is None for slot in self._slots):
            # Background work (titles) only on an idle engine, one request at a time:
            # never a step shared with a reply, which would slow its tokens.
            job = self._queue.pop(background=not self._live)
            if job is None:
                break
            if job.cancelled:
                continue  # its cancel hook has finished it
            try:
                reply = self._place(job)
            except Exception as exc:
                logger.exception("could not start a reply")
                job.fail(_engine_error(exc))
                continue
            self._live.append(reply)
            self.active = len(self._live)
            if not job.background:
                job.post_position(0)
        self._queue.set_free(sum(slot.reply is None for slot in self._slots))

    def _preempt_background(self) -> None:
        """A background reply gives up its sequence and its steps as soon as a reply
        waits or a reply request has begun (`AdmissionQueue.hold_background`): it goes
        back to the front of the background queue and starts over once the engine is
        idle again (a title is a few tokens; a reply's wait is not)."""
        background = [reply for reply in self._live if reply.job.background]
        if not background or not self._queue.reply_expected():
            return
        for reply in background:
            self._release(reply)
            reply.close()
            self._queue.requeue(reply.job)
            logger.debug("a background request yielded sequence %d to a reply", reply.slot.seq)

    def _place(self, job: Job) -> Reply:
        owner = job.requester
        own = self._own_slot(owner)
        slot = self._free_slot(owner) if own is None else self._close_gap(own)
        tokens = job.prompt.tokens
        if not slot.tokens:
            self._start_from_shared_prefix(slot, tokens)
        # The last prompt token is always evaluated: its logits give the first reply token.
        keep = min(common_prefix(slot.tokens, tokens), len(tokens) - 1)
        if keep < len(slot.tokens) and not self._runtime.truncate(slot.seq, keep):
            self._runtime.truncate(slot.seq, 0)
            keep = 0
        del slot.tokens[keep:]
        slot.owner = owner
        slot.last_used = next(self._clock)
        reply = Reply(job, slot, self._runtime, cached=keep, extra_stops=self._extra_stops)
        slot.reply = reply
        return reply

    def _start_from_shared_prefix(self, slot: Slot, tokens: tuple[int, ...]) -> None:
        prefix, state = self._shared_prefix, self._shared_state
        if state is None or len(tokens) <= len(prefix) or tokens[: len(prefix)] != prefix:
            return
        if self._runtime.restore(slot.seq, state):
            slot.tokens = list(prefix)

    def _own_slot(self, owner: Requester) -> Slot | None:
        for slot in self._slots:
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
        return {s.seq for s in self._slots if s.reply is not None}

    def _best_idle(self, busy: set[int]) -> Slot:
        return min(
            (s for s in self._slots if s.reply is None),
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

    def _drop_forgotten(self) -> None:
        """Empty the idle sequences of forgotten (deleted) conversations; one still
        generating (its cancel not yet seen) is looked at again next time."""
        for owner in self._parking.forgotten():
            for slot in self._slots:
                if slot.owner != owner:
                    continue
                if slot.reply is not None:
                    self._parking.forget(owner)
                else:
                    self._runtime.truncate(slot.seq, 0)
                    slot.owner, slot.tokens, slot.last_used = None, [], 0

    def _persist_sequences(self) -> None:
        """As the engine stops: write each conversation's KV that a sequence holds to
        disk, least recently used first, so the newest is the last a full disk evicts."""
        self._drop_forgotten()
        if self._parking.files is None:
            return
        for slot in sorted(self._slots, key=lambda s: s.last_used):
            if slot.owner is None or not slot.tokens:
                continue
            state = self._runtime.save(slot.seq)
            if state is not None:
                self._parking.persist(slot.owner, ParkedState(tuple(slot.tokens), state))

    # Steps.

    def _step(self) -> None:
        budget = self._runtime.facts.batch_size
        planned: list[tuple[Reply, BatchPart]] = []
        # Generating replies first (one token each), then prompt chunks in admission order.
        for reply in sorted(self._live, key=lambda r: r.next_token is None):
            # A background prompt goes in small chunks: a reply that arrives meanwhile
            # waits for the step under way, so that step must be short.
            part = reply.next_part(
                min(budget, BACKGROUND_CHUNK) if reply.job.background else budget
            )
            if part is not None:
                planned.append((reply, part))
                budget -= len(part.tokens)
        if planned:
            # In sequence order: llama.cpp splits a batch over separate KV streams into
            # micro-batches of consecutive sequence ids (llama_batch_allocr::split_equal,
            # "accept only increasing sequence ids"), so any other order costs one more
            # graph evaluation per break, each nearly the price of the whole step.
            planned.sort(key=lambda entry: entry[1].seq)
            self._decode(planned)

    def _decode(self, planned: Sequence[tuple[Reply, BatchPart]]) -> None:
        status = self._runtime.decode([part for _, part in planned])
        if status != 0:
            if len(planned) == 1:
                reply = planned[0][0]
                self._fail(reply, EngineError(f"llama_decode failed with status {status}"))
            else:
                # llama.cpp rolled the batch back: find the failing sequence alone.
                for one in planned:
                    self._decode([one])
            return
        index = 0
        context_size = self._runtime.facts.context_size
        for reply, part in planned:
            reply.decoded(part)
            index += len(part.tokens)
            if not part.wants_logits:
                continue
            try:
                reason = reply.sample(index - 1, context_size)
            except Exception as exc:
                logger.exception("sampling failed")
                self._fail(reply, _engine_error(exc))
                continue
            if reason is not None:
                self._end(reply, reason)

    # Leaving.

    def _end_cancelled(self) -> None:
        closing = self._queue.closed  # the engine is stopping: every live reply ends
        for reply in [r for r in self._live if closing or r.job.cancelled]:
            self._end(reply, "cancelled")

    def _end(self, reply: Reply, reason: FinishReason) -> None:
        self._release(reply)
        reply.job.finish(reply.result(reason))

    def _fail(self, reply: Reply, error: EngineError) -> None:
        self._release(reply)
        reply.close()
        slot = reply.slot
        # What the sequence holds is unknown now: forget it.
        self._runtime.truncate(slot.seq, 0)
        slot.owner, slot.tokens = None, []
        reply.job.fail(error)

    def _release(self, reply: Reply) -> None:
        self._live.remove(reply)
        self.active = len(self._live)
        slot = reply.slot
        slot.reply = None
        slot.last_used = next(self._clock)
        if reply.job.background:
            # Nobody continues a background request: its sequence is free and empty.
            self._runtime.truncate(slot.seq, 0)
            slot.owner, slot.tokens, slot.last_used = None, [], 0


def _runs(seqs: set[int]) -> int:
    """How many runs of consecutive ids `seqs` makes."""
    return sum(1 for seq in seqs if seq - 1 not in seqs)


def _engine_error(exc: Exception) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    return EngineError(f"generation failed: {type(exc).__name__}: {exc}")
