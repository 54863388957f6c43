"""Cancellation, the queue and failures with the real model in the worker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llamaql.engine.engine import LlamaEngine
from llamaql.engine.types import (
    ChatMessage,
    EngineError,
    EngineEvent,
    GenerationHandle,
    GenerationResult,
    QueueFullError,
    QueuePosition,
    SamplingOptions,
    TextPiece,
)
from llamaql.settings import DEFAULT_SYSTEM_PROMPT

pytestmark = pytest.mark.model
WAIT = 120.0
LONG = SamplingOptions(temperature=0.0, max_tokens=200)
COUNT = [
    ChatMessage("system", DEFAULT_SYSTEM_PROMPT),
    ChatMessage("user", "Count from 1 to 100, separated by commas."),
]
FRANCE = [
    ChatMessage("system", DEFAULT_SYSTEM_PROMPT),
    ChatMessage("user", "What is the capital of France?"),
]


async def submit(
    engine: LlamaEngine, messages: list[ChatMessage], options: SamplingOptions = LONG
) -> GenerationHandle:
    return engine.submit(await engine.prepare(messages, options), options)


async def events_of(handle: GenerationHandle) -> list[EngineEvent]:
    async def run() -> list[EngineEvent]:
        return [event async for event in handle.events()]

    return await asyncio.wait_for(run(), WAIT)


def result_of(events: list[EngineEvent]) -> GenerationResult:
    assert isinstance(events[-1], GenerationResult)
    return events[-1]


async def test_cancel_mid_generation_keeps_text_and_frees_the_worker(engine: LlamaEngine) -> None:
    handle = await submit(engine, COUNT)
    pieces: list[str] = []
    async for event in handle.events():
        if isinstance(event, TextPiece):
            pieces.append(event.text)
            if len(pieces) == 2:
                handle.cancel()
        elif isinstance(event, GenerationResult):
            result = event
    assert result.finish_reason == "cancelled"
    assert result.text == "".join(pieces)
    assert 2 <= result.usage.completion_tokens < 200
    after = result_of(await events_of(await submit(engine, FRANCE)))
    assert after.finish_reason == "stop"


async def test_cancel_is_seen_before_the_next_token(engine: LlamaEngine, runtime: Any) -> None:
    handles: list[GenerationHandle] = []
    runtime.on_sample = lambda count: handles[0].cancel() if count == 3 else None
    handles.append(await submit(engine, COUNT))
    result = result_of(await events_of(handles[0]))
    assert result.finish_reason == "cancelled"
    assert result.usage.completion_tokens == 3


async def test_cancel_during_prompt_evaluation(engine: LlamaEngine, runtime: Any) -> None:
    # n_batch is 64 in these tests: a long prompt takes several batches.
    long_text = "Summarize this. " + " ".join(f"Item {i} is a thing." for i in range(80))
    handles: list[GenerationHandle] = []
    runtime.on_batch_check = lambda checks: handles[0].cancel() if checks == 3 else None
    handles.append(await submit(engine, [ChatMessage("user", long_text)]))
    result = result_of(await events_of(handles[0]))
    assert result.finish_reason == "cancelled"
    assert result.usage.completion_tokens == 0
    assert result.usage.prompt_tokens > 3 * 64
    # Two batches went in before the third check cancelled; the rest never did.
    assert 2 * 64 <= runtime.cached_tokens <= result.usage.prompt_tokens - 64


async def test_cancelled_while_queued_never_reaches_the_model(
    engine: LlamaEngine, runtime: Any
) -> None:
    gate = runtime.hold_next()
    before = len(runtime.evaluated) + 1
    first = await submit(engine, FRANCE)
    assert await asyncio.to_thread(runtime.wait_evaluated, before)  # first is running
    queued = await submit(engine, [ChatMessage("user", "Never run this one.")])
    queued.cancel()
    assert await events_of(queued) == [
        QueuePosition(1),
        GenerationResult(text="", finish_reason="cancelled"),
    ]
    following = await submit(engine, FRANCE)
    gate.set()
    assert result_of(await events_of(first)).finish_reason == "stop"
    assert result_of(await events_of(following)).finish_reason == "stop"
    assert len(runtime.evaluated) == before + 1  # only `following` was evaluated


async def test_full_queue_fails_at_once(engine: LlamaEngine, runtime: Any) -> None:
    gate = runtime.hold_next()
    started = len(runtime.evaluated) + 1
    running = await submit(engine, FRANCE)
    assert await asyncio.to_thread(runtime.wait_evaluated, started)
    waiting = [await submit(engine, FRANCE), await submit(engine, FRANCE)]  # queue_size 2
    assert not engine.has_room()
    prompt = await engine.prepare(FRANCE, LONG)
    with pytest.raises(QueueFullError):
        engine.submit(prompt, LONG)
    gate.set()
    for handle in (running, *waiting):
        assert result_of(await events_of(handle)).text == "The capital of France is Paris."
    assert engine.has_room()


async def test_failing_request_does_not_kill_the_worker(engine: LlamaEngine, runtime: Any) -> None:
    runtime.fail_next = True
    with pytest.raises(EngineError, match="injected failure"):
        await events_of(await submit(engine, FRANCE))
    result = result_of(await events_of(await submit(engine, FRANCE)))
    assert result.text == "The capital of France is Paris."


async def test_preparing_prompts_while_the_worker_generates(engine: LlamaEngine) -> None:
    # Tokenizing reads the vocabulary from other threads while the worker decodes.
    questions = [
        [ChatMessage("user", f"Question number {i}: why is the sky blue?")] for i in range(6)
    ]
    expected = [(await engine.prepare(q, LONG)).tokens for q in questions]
    busy = await submit(engine, COUNT)
    stream = busy.events()
    while not isinstance(await anext(stream), TextPiece):
        pass  # generation is under way
    prepared = await asyncio.gather(*(engine.prepare(q, LONG) for q in questions))
    assert [p.tokens for p in prepared] == expected
    busy.cancel()
    assert result_of([event async for event in stream]).finish_reason == "cancelled"
