"""Greedy sampling with the real model: the in-place argmax picks what llama.cpp's own
greedy sampler picks, batch row by batch row, over a whole reply of several sequences."""

from __future__ import annotations

import llama_cpp
import pytest
from tests.integration.engine.conftest import MODEL

from llamaql.config import load_config
from llamaql.engine.local.llama_runtime import LlamaRuntime
from llamaql.engine.local.loading import resolve_load_config
from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.engine.local.runtime import BatchPart
from llamaql.ports.engine import SamplingOptions
from llamaql.ports.options import resolve_options

pytestmark = pytest.mark.model
PROMPTS = (
    "Write a very long story about a fox who reads.",
    "List the planets of the solar system.",
    "Explain why the sky is blue.",
)


def test_greedy_in_place_picks_what_llama_cpps_greedy_sampler_picks() -> None:
    config = load_config(model_path=MODEL, parallel=3, context_size=256, n_batch=64)
    runtime = LlamaRuntime(resolve_load_config(config.engine, read_gguf_metadata(MODEL)))
    greedy = resolve_options(
        SamplingOptions(temperature=0.0), context_size=256, default_max_tokens=24
    )
    ours = [runtime.new_sampler(greedy) for _ in PROMPTS]
    # The reference: llama.cpp's greedy sampler in a chain of its own, on the same rows.
    chains = []
    for _ in PROMPTS:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        chains.append(chain)
    try:
        prompts = [tuple(runtime.tokenize(text)) for text in PROMPTS]
        parts = [BatchPart(seq, 0, p, wants_logits=True) for seq, p in enumerate(prompts)]
        positions = [len(p) for p in prompts]
        picked: list[list[int]] = [[] for _ in PROMPTS]
        for _ in range(24):
            assert runtime.decode(parts) == 0
            rows = [sum(len(p.tokens) for p in parts[: i + 1]) - 1 for i in range(len(parts))]
            parts = []
            for seq, row in enumerate(rows):
                token = ours[seq].sample(row)
                reference = llama_cpp.llama_sampler_sample(chains[seq], runtime._ctx, row)
                assert token == reference, (seq, len(picked[seq]))
                picked[seq].append(token)
                parts.append(BatchPart(seq, positions[seq], (token,), wants_logits=True))
                positions[seq] += 1
        assert all(len(set(tokens)) > 3 for tokens in picked)  # real text, not one token
    finally:
        for sampler in ours:
            sampler.close()
        for chain in chains:
            llama_cpp.llama_sampler_free(chain)
        runtime.close()
