"""Where replies go with the real model: a conversation's KV moves to close a gap."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.engine.conftest import SteeredRuntime, fresh_requester
from tests.integration.engine.test_engine_parking import A1, B1, ask

from llamaql.engine.engine import LlamaEngine
from llamaql.engine.types import ChatMessage

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
    for _ in range(600):  # until X's turn waits behind the held step
        if engine.load().waiting == 1:
            break
        await asyncio.sleep(0.05)
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
