"""Decode lanes with the real model: a state moves between the lanes' contexts, two
lanes answer as each reply would alone, and a conversation returns to its lane's KV."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
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


def test_a_state_saved_in_one_lane_continues_the_same_in_the_other() -> None:
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is missing: run `make model`")
    config = load_config(model_path=MODEL, context_size=512, n_batch=64, n_threads=1)
    load = replace(resolve_load_config(config.engine, read_gguf_metadata(MODEL)), sequences=2)
    lanes = [LlamaRuntime(load), LlamaRuntime(load)]
    try:
        prompt = tuple(lanes[0].tokenize("Write a very long story about a fox who reads."))
        head, last = prompt[:-1], prompt[-1]
        assert lanes[0].decode([BatchPart(0, 0, head, wants_logits=False)]) == 0
        state = lanes[0].save(0)
        assert state is not None
        assert lanes[1].restore(1, state)
        greedy = resolve_options(
            SamplingOptions(temperature=0.0), context_size=512, default_max_tokens=16
        )

        def continue_alone(runtime: LlamaRuntime, seq: int) -> list[int]:
            sampler, token, tokens = runtime.new_sampler(greedy), last, []
            try:
                for pos in range(len(head), len(head) + 12):
                    assert runtime.decode([BatchPart(seq, pos, (token,), wants_logits=True)]) == 0
                    token = sampler.sample(0)
                    tokens.append(token)
            finally:
                sampler.close()
            return tokens

        original, moved = continue_alone(lanes[0], 0), continue_alone(lanes[1], 1)
    finally:
        for runtime in lanes:
            runtime.close()
    assert moved == original
    assert len(set(original)) > 1


async def test_two_lanes_answer_each_reply_as_it_is_answered_alone(
    lanes_engine: tuple[LlamaEngine, list[SteeredRuntime]],
) -> None:
    engine, runtimes = lanes_engine
    alone = [(await ask(engine, messages, fresh_requester())).text for messages in (A1, B1)]
    admitted = [runtime.admitted for runtime in runtimes]
    together = await asyncio.gather(
        ask(engine, A1, fresh_requester()), ask(engine, B1, fresh_requester())
    )
    started = [
        runtime.admitted - before for runtime, before in zip(runtimes, admitted, strict=True)
    ]
    assert started == [1, 1]
    assert [reply.text for reply in together] == alone


async def test_a_conversation_continues_from_its_lanes_kv(
    lanes_engine: tuple[LlamaEngine, list[SteeredRuntime]],
) -> None:
    engine, _runtimes = lanes_engine
    x, y = fresh_requester(), fresh_requester()
    x1, _ = await asyncio.gather(ask(engine, A1, x), ask(engine, B1, y))
    x2 = await ask(engine, [*A1, ChatMessage("assistant", x1.text), ChatMessage("user", "Why?")], x)
    assert x2.usage.cached_prompt_tokens >= x1.usage.prompt_tokens
