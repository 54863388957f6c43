"""A request's sampling on the real runtime: llama.cpp's sampler chain built from its
options, or, for plain greedy requests, the highest logit read in place."""

from __future__ import annotations

import llama_cpp
import numpy as np

from llamaql.ports.engine import EngineError, ResolvedOptions

_PENALTY_LAST_N = 64


class LlamaSampler:
    """One request's sampler: llama.cpp's chain built from its options, or none for plain
    greedy (temperature 0, no repeat penalty), which reads the highest logit in place."""

    def __init__(self, ctx: object, n_vocab: int, options: ResolvedOptions) -> None:
        self._ctx = ctx
        self._n_vocab = n_vocab
        self._chain: object | None = None
        if options.temperature <= 0.0 and options.repeat_penalty == 1.0:
            # Plain greedy: the highest logit, read in place. llama.cpp's chain would
            # first copy all n_vocab logits into candidates (64 us a token here, 0.5 ms
            # of every step at 8 replies, while the decode threads wait); the first
            # maximum, as its greedy sampler picks.
            return
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
        if self._chain is None:
            logits = llama_cpp.llama_get_logits_ith(self._ctx, index)
            if not logits:
                raise EngineError(f"no logits for batch row {index}")
            return int(np.ctypeslib.as_array(logits, shape=(self._n_vocab,)).argmax())
        return int(llama_cpp.llama_sampler_sample(self._chain, self._ctx, index))

    def close(self) -> None:
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None
