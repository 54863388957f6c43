"""Continuous batching: the scheduler thread that decodes every live reply together.

Each step is one llama.cpp batch: a single token for every reply that is generating, then
prompt chunks of replies that are joining, within the batch size. Replies join (from the
fair admission queue) and leave (finished, failed, cancelled) between steps, so a
cancel takes effect within one step. A failed batch is retried reply by reply, so a
failure in one sequence fails that reply alone.

Which sequence a reply decodes in and what KV each sequence keeps is
`placement.SequencePlacement`'s (KV per conversation, parked in memory and on disk, and
written at a clean stop). Background requests (titles) run only on an idle engine, one
at a time, their prompts in small steps, and yield the moment a reply waits or a send
begins: they never hold a sequence or a step that a reply could use, and a reply's wait
for the step under way is short; a background request's KV is dropped when it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from llamaql.engine.admission import AdmissionQueue
from llamaql.engine.jobs import Job
from llamaql.engine.local.parking import KVParking
from llamaql.engine.local.placement import SequencePlacement
from llamaql.engine.local.reply import Reply
from llamaql.engine.local.runtime import BatchPart, ModelRuntime
from llamaql.ports.engine import EngineError, FinishReason, Requester

logger = logging.getLogger(__name__)
# Prompt tokens a background request evaluates per step (~20 ms of the default model on
# two cores, against ~130 ms for a whole 200-token title prompt in one step).
BACKGROUND_CHUNK = 32
# How long an idle engine waits for the next of a burst's announced sends before its
# first step (AdmissionQueue.gather): about the request path of one send on two cores,
# under load; and the longest it waits for the whole burst. With one bound of 30 ms, the
# later sends of 8 at once (~8 ms of request path each, one after the other) missed the
# first step and waited for its whole prompt step: first token p95 1.4x llama-server's.
GATHER_S = 0.03
GATHER_MOST_S = 0.15


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
        lane: int = 0,
    ) -> None:
        self._runtime = runtime
        self._queue = queue
        self._lane = lane  # which of the schedulers taking from `queue` (admission.py)
        self._placement = SequencePlacement(runtime, parking, shared_prefix, lane=lane)
        self._slots = self._placement.slots
        self._extra_stops = extra_stops
        self._live: list[Reply] = []  # in admission order
        # len(self._live), kept as a plain int so other threads read it without a lock.
        self.active = 0
        queue.set_free(len(self._slots), lane=lane)

    def holds(self, owner: Requester) -> bool:
        """Whether an idle sequence of this scheduler holds `owner`'s KV (a hint)."""
        return self._placement.holds(owner)

    def run(self) -> None:
        """Admit, step, repeat; returns once the queue is closed and no reply is live."""
        self._placement.evaluate_shared_prefix()
        while True:
            self._end_cancelled()
            if not self._live:
                self._report()  # its last replies ended since it last said
                self._runtime.idle()
                if not self._queue.wait(lane=self._lane):
                    break
            self._placement.drop_forgotten()
            idle = not any(not reply.job.background for reply in self._live)
            self._admit()
            if idle and self._live:
                self._runtime.busy()
            if idle and any(not reply.job.background for reply in self._live):
                # The rest of a burst joins this first step.
                self._queue.gather(GATHER_S, GATHER_MOST_S)
                self._admit()
            if self._live:
                try:
                    self._step()
                except Exception as exc:  # a bug, not a llama.cpp status: fail what is live
                    logger.exception("decode step failed")
                    for reply in list(self._live):
                        self._fail(reply, _engine_error(exc))
        self._placement.persist_sequences()
        logger.debug("engine scheduler stopped")

    # Admission.

    def _admit(self) -> None:
        self._preempt_background()
        while any(slot.reply is None for slot in self._slots):
            # Background work (titles) only on an idle engine, one request at a time:
            # never a step shared with a reply, which would slow its tokens.
            job = self._queue.pop(background=not self._live, lane=self._lane)
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
        self._report()

    def _report(self) -> None:
        """Tell the queue this lane's idle sequences and live replies."""
        free = sum(slot.reply is None for slot in self._slots)
        self._queue.set_free(free, lane=self._lane, live=len(self._live))

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
        slot, cached = self._placement.place(job.requester, job.prompt.tokens)
        reply = Reply(job, slot, self._runtime, cached=cached, extra_stops=self._extra_stops)
        slot.reply = reply
        return reply

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
        slot.last_used = self._placement.tick()
        if reply.job.background:
            # Nobody continues a background request: its sequence is free and empty.
            self._runtime.truncate(slot.seq, 0)
            slot.owner, slot.tokens, slot.last_used = None, [], 0


def _engine_error(exc: Exception) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    return EngineError(f"generation failed: {type(exc).__name__}: {exc}")
