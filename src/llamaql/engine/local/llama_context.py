"""One llama.cpp context on a loaded model: its sequences' KV, its batch and its decode.

`llama_runtime.LlamaRuntime` holds one of these per decode lane (`lanes.DecodeLanes`):
sequence ids here are the context's own, 0 to `sequences - 1`. A context belongs to one
thread at a time (the scheduler's, or a lane's decode thread while the scheduler waits
for it); sampling reads the logits of its latest decode.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp

from llamaql.engine.local.runtime import BatchPart
from llamaql.ports.engine import EngineError, ResolvedOptions

logger = logging.getLogger(__name__)
_PENALTY_LAST_N = 64
# A global batch row -> (the context whose latest decode holds it, its row there).
Locate = Callable[[int], tuple[Any, int]]


class LlamaSampler:
    """A llama.cpp sampler chain built from one request's options."""

    def __init__(self, locate: Locate, n_vocab: int, options: ResolvedOptions) -> None:
        self._locate = locate
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

        def add(sampler: object) -> None:
            llama_cpp.llama_sampler_chain_add(chain, sampler)

        if options.repeat_penalty != 1.0:
            add(
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab, _PENALTY_LAST_N, options.repeat_penalty, 0.0, 0.0
                )
            )
        if options.temperature <= 0.0:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            if options.top_k > 0:
                add(llama_cpp.llama_sampler_init_top_k(options.top_k))
            add(llama_cpp.llama_sampler_init_top_p(options.top_p, 1))
            add(llama_cpp.llama_sampler_init_min_p(options.min_p, 1))
            add(llama_cpp.llama_sampler_init_temp(options.temperature))
            seed = llama_cpp.LLAMA_DEFAULT_SEED if options.seed is None else options.seed
            add(llama_cpp.llama_sampler_init_dist(seed))
        self._chain = chain

    def sample(self, index: int) -> int:
        # Samples from batch row `index` of the latest decode and accepts the token
        # (which feeds the repetition penalty's history).
        ctx, row = self._locate(index)
        return int(llama_cpp.llama_sampler_sample(self._chain, ctx, row))

    def close(self) -> None:
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None


class LlamaContext:
    """`sequences` separate KV streams (not unified: attention stays per sequence) of
    `context_size` tokens each, decoding on `threads` threads."""

    def __init__(
        self, model: Any, *, context_size: int, sequences: int, batch_size: int, threads: int
    ) -> None:
        total = context_size * sequences
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = total
        cparams.n_seq_max = sequences
        cparams.kv_unified = False
        cparams.n_batch = cparams.n_ubatch = min(batch_size, total)
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.no_perf = True
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            raise EngineError(
                f"llama.cpp could not create a context of {sequences} sequences of "
                f"{context_size} tokens"
            )
        self.ctx: Any = ctx
        self.params = cparams
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.batch_size = int(cparams.n_batch)
        self._batch = llama_cpp.llama_batch_init(self.batch_size, 0, 1)
        self._threads = threads

    def decode(self, parts: Sequence[BatchPart]) -> int:
        """One batch of `parts` (sequence ids of this context), as ModelRuntime.decode."""
        batch = self._batch
        tokens, positions, seq_ids, logits = batch.token, batch.pos, batch.seq_id, batch.logits
        n_seq_id = batch.n_seq_id
        i = 0
        for part in parts:
            if i + len(part.tokens) > self.batch_size:
                raise EngineError(f"a batch of more than {self.batch_size} tokens")
            for offset, token in enumerate(part.tokens):
                tokens[i] = token
                positions[i] = part.pos + offset
                n_seq_id[i] = 1
                seq_ids[i][0] = part.seq
                logits[i] = 0
                i += 1
            if part.wants_logits:
                logits[i - 1] = 1
        batch.n_tokens = i
        status = int(llama_cpp.llama_decode(self.ctx, batch))
        if status == 0:
            # GPU backends decode asynchronously: wait, so the time is billed to this step.
            llama_cpp.llama_synchronize(self.ctx)
        return status

    def set_threads(self, threads: int) -> None:
        """Decode on `threads` threads from the next decode on (between decodes)."""
        if threads != self._threads:
            llama_cpp.llama_set_n_threads(self.ctx, threads, threads)
            self._threads = threads

    def truncate(self, seq: int, keep: int) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self._memory, seq, keep, -1))

    def save(self, seq: int) -> bytearray | None:
        size = int(llama_cpp.llama_state_seq_get_size(self.ctx, seq))
        state = bytearray(size)
        written = llama_cpp.llama_state_seq_get_data(
            self.ctx, (ctypes.c_uint8 * size).from_buffer(state), size, seq
        )
        if written != size:
            logger.warning("could not save sequence %d: %d of %d bytes written", seq, written, size)
            return None
        return state

    def restore(self, seq: int, state: bytearray) -> bool:
        # The sequence must be empty before a state is read into it.
        llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)
        size = len(state)
        read = llama_cpp.llama_state_seq_set_data(
            self.ctx, (ctypes.c_uint8 * size).from_buffer(state), size, seq
        )
        if read == 0:
            logger.warning("could not restore a %d-byte state into sequence %d", size, seq)
            llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)
            return False
        return True

    def close(self) -> None:
        if self.ctx is not None:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
