"""Where replies go with the real model: a conversation's KV moves to close a gap, and a
state restored into another sequence continues exactly as the original would."""

from __future__ import annotations

import asyncio

import pytest
from tests.eventually import eventually
from tests.integration.engine.conftest import MODEL, SteeredRuntime, fresh_requester
from tests.integration.engine.test_engine_parking import A1, B1, ask

from llamaql.config import load_config
from llamaql.engine.local.engine import LlamaEngine
from llamaql.engine.local.llama_runtime import LlamaRuntime
from llamaql.engine.local.loading import resolve_load_config
from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.engine.local.runtime import BatchPart
from llamaql.ports.engine import ChatMessage, SamplingOptions
from llamaql.ports.options import resolve_options

pytestmark = pytest.mark.model


async def test_a_returning_conversation_moves_beside_the_live_reply(
    three_engine: tuple[LlamaEngine, SteeredRuntime],
) -> None:
    engine, runtime = three_engine
    x, y, a = fresh_requester(), fresh_requester(), fresh_requester()
    x1 = await ask(engine, A1, x)  # sequence 0
    await ask(engine, B1, y)  # sequence 1
    gate = runtime.hold_next()  # A's prompt (sequence 2) waits in its first step
    a_reply = asyncio.ensure_future(ask(engine, [ChatMessage("user", "Count to 40.")], a))
    assert await asyncio.to_thread(runtime.wait_batches, len(runtime.batches) + 1)
    x2_messages = [*A1, ChatMessage("assistant", x1.text), ChatMessage("user", "Why in rain?")]
    batches_before = len(runtime.batches)
    x2_reply = asyncio.ensure_future(ask(engine, x2_messages, x))
    await eventually(  # until X's turn waits behind the held step
        engine.load, 30, holds=lambda load: load.waiting == 1, what="the engine's load"
    )
    gate.set()
    x2, _ = await asyncio.gather(x2_reply, a_reply)
    # X's KV left sequence 0 for 1, beside A's 2: one run, and nothing evaluated again.
    shared = [
        [part.seq for part in batch]
        for batch in runtime.batches[batches_before:]
        if len(batch) == 2
    ]
    assert shared, "X's turn never shared a step with A"
    assert all(seqs == [1, 2] for seqs in shared), shared
    assert x2.usage.cached_prompt_tokens >= x1.usage.prompt_tokens
    assert x2.usage.completion_tokens > 0


def test_a_state_restored_into_another_sequence_continues_the_same() -> None:
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is missing: run `make model`")
    config = load_config(model_path=MODEL, parallel=3, context_size=512, n_batch=64)
    runtime = LlamaRuntime(resolve_load_config(config.engine, read_gguf_metadata(MODEL)))
    try:
        prompt = tuple(runtime.tokenize("Write a very long story about a fox who reads."))
        head, last = prompt[:-1], prompt[-1]
        assert runtime.decode([BatchPart(0, 0, head, wants_logits=False)]) == 0
        state = runtime.save(0)
        assert state is not None
        assert runtime.restore(2, state)
        greedy = resolve_options(
            SamplingOptions(temperature=0.0), context_size=512, default_max_tokens=16
        )

        def continue_alone(seq: int) -> list[int]:
            """Twelve greedy tokens of `seq`, each step decoding it alone."""
            sampler, token, tokens = runtime.new_sampler(greedy), last, []
            try:
                for pos in range(len(head), len(head) + 12):
                    assert runtime.decode([BatchPart(seq, pos, (token,), wants_logits=True)]) == 0
                    token = sampler.sample(0)
                    tokens.append(token)
            finally:
                sampler.close()
            return tokens

        original, moved = continue_alone(0), continue_alone(2)
    finally:
        runtime.close()
    assert moved == original
    assert len(set(original)) > 1  # a real continuation, not one token repeated
