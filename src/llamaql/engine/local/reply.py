"""One reply being decoded in a sequence, and the sequence (slot) that holds it.

A `Reply` is a job's per-sequence state: its sampler chain, the prompt tokens still to
evaluate, the token sampled but not yet decoded, its text assembly (UTF-8, stop strings),
token limit and timings. The scheduler drives it one step at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from llamaql.engine.jobs import Job
from llamaql.engine.local.runtime import BatchPart, ModelRuntime, Sampler
from llamaql.engine.local.text import ReplyText
from llamaql.ports.engine import FinishReason, GenerationResult, Requester, Usage


@dataclass(eq=False)
class Slot:
    """One llama.cpp sequence: whose KV it holds, which tokens, and its live reply."""

    seq: int
    owner: Requester | None = None
    tokens: list[int] = field(default_factory=list)
    last_used: int = 0
    reply: Reply | None = None


class Reply:
    """A job decoding in `slot`; `pending` prompt tokens follow the `cached` ones reused."""

    def __init__(
        self,
        job: Job,
        slot: Slot,
        runtime: ModelRuntime,
        *,
        cached: int,
        extra_stops: tuple[str, ...],
    ) -> None:
        self.job = job
        self.slot = slot
        self.cached = cached
        self.pending: tuple[int, ...] = job.prompt.tokens[cached:]
        self.next_token: int | None = None
        self.produced = 0
        options = job.prompt.options
        self._runtime = runtime
        self._text = ReplyText((*options.stop, *extra_stops))
        self._sampler: Sampler | None = runtime.new_sampler(options)
        self._max_tokens = options.max_tokens
        self._started = time.perf_counter()
        self._prompt_done: float | None = None

    def next_part(self, budget: int) -> BatchPart | None:
        """What this reply adds to the next batch, within `budget` tokens."""
        pos = len(self.slot.tokens)
        if self.next_token is not None:
            return BatchPart(self.slot.seq, pos, (self.next_token,), wants_logits=True)
        if not self.pending or budget <= 0:
            return None
        chunk = self.pending[:budget]
        return BatchPart(self.slot.seq, pos, chunk, wants_logits=len(chunk) == len(self.pending))

    def decoded(self, part: BatchPart) -> None:
        """`part` is now in the sequence's KV."""
        self.slot.tokens.extend(part.tokens)
        if self.next_token is not None:
            self.next_token = None
        else:
            self.pending = self.pending[len(part.tokens) :]

    def sample(self, index: int, context_size: int) -> FinishReason | None:
        """Take the next token from batch row `index`; the finish reason when it ends."""
        assert self._sampler is not None
        token = self._sampler.sample(index)
        if self._prompt_done is None:
            self._prompt_done = time.perf_counter()
        if self._runtime.is_eog(token):
            return "stop"
        self.produced += 1
        self.job.post_text(self._text.push(self._runtime.token_bytes(token)))
        if self._text.stopped:
            return "stop"
        if self.produced >= self._max_tokens or len(self.slot.tokens) >= context_size:
            return "length"
        self.next_token = token
        return None

    def result(self, reason: FinishReason) -> GenerationResult:
        """Release held text and the sampler; the job's final result."""
        self.close()
        self.job.post_text(self._text.finish())
        ended = time.perf_counter()
        prompt_done = self._prompt_done or ended
        generation_s = ended - prompt_done
        usage = Usage(
            prompt_tokens=len(self.job.prompt.tokens),
            cached_prompt_tokens=self.cached,
            completion_tokens=self.produced,
            prompt_ms=(prompt_done - self._started) * 1000.0,
            generation_ms=generation_s * 1000.0,
            tokens_per_second=self.produced / generation_s
            if self.produced and generation_s > 0
            else 0.0,
        )
        return GenerationResult(
            text=self._text.text,
            finish_reason=reason,
            usage=usage,
            dropped_messages=self.job.prompt.dropped_messages,
        )

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None
