"""Cancellation, the queue and failures with the real model in the scheduler."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.integration.engine.conftest import fresh_requester

from llamaql.config import DEFAULT_SYSTEM_PROMPT
from llamaql.engine.local.engine import LlamaEngine
from llamaql.ports.engine import (
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
    return engine.submit(await engine.prepare(messages, options), fresh_requester())


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
    runtime.on_sample = lambda count, _seed: handles[0].cancel() if count == 3 else None
    handles.append(await submit(engine, COUNT))
    result = result_of(await events_of(handles[0]))
    assert result.finish_reason == "cancelled"
    assert result.usage.completion_tokens == 3


async def test_cancel_during_prompt_evaluation(engine: LlamaEngine, runtime: Any) -> None:
    # n_batch is 64 in these tests: a long prompt takes several steps.
    long_text = "Summarize this. " + " ".join(f"Item {i} is a thing." for i in range(80))
    handles: list[GenerationHandle] = []
    first = len(runtime.batches) + 1
    runtime.on_decode = lambda n: handles[0].cancel() if n == first + 1 else None
    handles.append(await submit(engine, [ChatMessage("user", long_text)]))
    result = result_of(await events_of(handles[0]))
    assert result.finish_reason == "cancelled"
    assert result.usage.completion_tokens == 0
    assert result.usage.prompt_tokens > 3 * 64
    # Two chunks went in (the second was under way when the cancel came); no more did.
    assert len(runtime.batches) == first + 1


async def test_cancelled_while_queued_never_reaches_the_model(
    serial_engine: LlamaEngine, serial_runtime: Any
) -> None:
    gate = serial_runtime.hold_next()
    before = len(serial_runtime.batches)
    admitted = serial_runtime.admitted
    first = await submit(serial_engine, FRANCE)
    assert await asyncio.to_thread(serial_runtime.wait_batches, before + 1)  # first is running
    queued = await submit(serial_engine, [ChatMessage("user", "Never run this one.")])
    queued.cancel()
    assert await events_of(queued) == [
        QueuePosition(1),
        GenerationResult(text="", finish_reason="cancelled"),
    ]
    gate.set()
    assert result_of(await events_of(first)).finish_reason == "stop"
    assert serial_runtime.admitted == admitted + 1  # only `first` joined a sequence


async def test_full_queue_fails_at_once(serial_engine: LlamaEngine, serial_runtime: Any) -> None:
    gate = serial_runtime.hold_next()
    before = len(serial_runtime.batches)
    running = await submit(serial_engine, FRANCE)
    assert await asyncio.to_thread(serial_runtime.wait_batches, before + 1)
    waiting = [await submit(serial_engine, FRANCE) for _ in range(4)]  # queue_size 4
    assert not serial_engine.has_room()
    prompt = await serial_engine.prepare(FRANCE, LONG)
    with pytest.raises(QueueFullError):
        serial_engine.submit(prompt, fresh_requester())
    gate.set()
    for handle in (running, *waiting):
        assert result_of(await events_of(handle)).text == "The capital of France is Paris."
    assert serial_engine.has_room()


async def test_failing_request_does_not_stop_the_scheduler(
    engine: LlamaEngine, runtime: Any
) -> None:
    runtime.fail_next = True
    with pytest.raises(EngineError, match="status -3"):
        await events_of(await submit(engine, FRANCE))
    result = result_of(await events_of(await submit(engine, FRANCE)))
    assert result.text == "The capital of France is Paris."


async def test_preparing_prompts_while_the_scheduler_decodes(engine: LlamaEngine) -> None:
    # Tokenizing reads the vocabulary from other threads while the scheduler decodes.
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


async def test_a_reply_arriving_while_a_title_decodes_starts_within_one_step(
    engine: LlamaEngine, runtime: Any
) -> None:
    # A background request (a model-written title) decoding on an idle engine gives up
    # its sequence and its steps as soon as a reply waits, then starts over afterwards.
    title_prompt = await engine.prepare(COUNT, LONG)
    title = engine.submit(title_prompt, fresh_requester(), background=True)
    start = len(runtime.batches)
    assert runtime.wait_batches(start + 4)  # its prompt, then decoding
    reply_prompt = await engine.prepare(FRANCE, LONG)
    arrived = len(runtime.batches)
    reply = engine.submit(reply_prompt, fresh_requester())
    reply_events, title_events = await asyncio.gather(events_of(reply), events_of(title))
    assert "Paris" in result_of(reply_events).text
    # The reply's prompt is the first batch part of several tokens after it arrived
    # (the title only decodes single tokens by then); at most the title step already
    # under way comes first.
    later = runtime.batches[arrived:]
    first = next(i for i, batch in enumerate(later) if any(len(p.tokens) > 1 for p in batch))
    assert first <= 1, f"the reply waited {first} steps"
    assert all(len(batch) == 1 for batch in later), "the title shared a step with the reply"
    # The title ran again, alone, once the reply was done, and still finished.
    assert result_of(title_events).finish_reason in ("stop", "length")
