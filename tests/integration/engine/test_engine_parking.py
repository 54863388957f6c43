"""Conversations taking turns on one sequence: parked KV states keep their history."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.engine.conftest import fresh_requester

from llamaql.engine.local.engine import LlamaEngine
from llamaql.engine.local.parking import common_prefix
from llamaql.ports.engine import ChatMessage, GenerationResult, Requester, SamplingOptions

pytestmark = pytest.mark.model
OPTIONS = SamplingOptions(temperature=0.0, max_tokens=40)
SYSTEM = ChatMessage("system", "You are a patient tutor. Explain things in plain sentences.")
A1 = [
    SYSTEM,
    ChatMessage(
        "user",
        "Explain in simple words how a rainbow forms after the rain, and why its colours "
        "always appear in the same order from the outside to the inside.",
    ),
]
B1 = [
    SYSTEM,
    ChatMessage(
        "user",
        "Describe how honey bees turn the nectar of flowers into honey, step by step, "
        "for a curious child who has never seen a beehive.",
    ),
]


async def ask(
    engine: LlamaEngine, messages: list[ChatMessage], requester: Requester
) -> GenerationResult:
    handle = engine.submit(await engine.prepare(messages, OPTIONS), requester)

    async def last() -> GenerationResult:
        events = [event async for event in handle.events()]
        assert isinstance(events[-1], GenerationResult)
        return events[-1]

    return await asyncio.wait_for(last(), 120)


async def test_a_conversation_keeps_its_history_when_another_takes_a_turn(
    serial_engine: LlamaEngine, uncached_engine: LlamaEngine
) -> None:
    engine = serial_engine
    a, b = fresh_requester(), fresh_requester()
    a1 = await ask(engine, A1, a)
    await ask(engine, B1, b)  # the one sequence now holds the other conversation
    a2_messages = [*A1, ChatMessage("assistant", a1.text), ChatMessage("user", "Why in rain?")]
    a2_tokens = (await engine.prepare(a2_messages, OPTIONS)).tokens
    b1_tokens = (await engine.prepare(B1, OPTIONS)).tokens
    shared_with_b1 = common_prefix(b1_tokens, a2_tokens)

    a2 = await ask(engine, a2_messages, a)

    # A1's prompt and most of its reply were not evaluated again, far more than the
    # system prompt that the sequence's own contents (B1) share with A2.
    assert a2.usage.cached_prompt_tokens >= a1.usage.prompt_tokens + a1.usage.completion_tokens // 2
    assert a2.usage.cached_prompt_tokens >= shared_with_b1 + 32
    assert a2.usage.cached_prompt_tokens < a2.usage.prompt_tokens
    # A restored state answers exactly as the parking-off engine does when the
    # conversation runs alone (the same tokens in the same batches, nothing restored).
    alone_a = fresh_requester()
    alone = await ask(uncached_engine, A1, alone_a)
    assert alone.text == a1.text
    replay = await ask(uncached_engine, a2_messages, alone_a)
    assert replay.usage.cached_prompt_tokens == a2.usage.cached_prompt_tokens
    assert a2.text == replay.text
    assert a2.usage.completion_tokens == replay.usage.completion_tokens > 0
