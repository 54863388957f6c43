"""The real default model through LlamaEngine: text, stop rules, seeds, usage, reuse."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.engine.conftest import fresh_requester

from llamaql.config import DEFAULT_SYSTEM_PROMPT
from llamaql.engine.local.engine import LlamaEngine
from llamaql.engine.local.llama_runtime import LlamaRuntime
from llamaql.engine.local.text import ReplyText
from llamaql.ports.engine import (
    ChatMessage,
    GenerationResult,
    QueuePosition,
    Requester,
    SamplingOptions,
    TextPiece,
)

pytestmark = pytest.mark.model
GREEDY = SamplingOptions(temperature=0.0, max_tokens=16)
FRANCE = [
    ChatMessage("system", DEFAULT_SYSTEM_PROMPT),
    ChatMessage("user", "What is the capital of France?"),
]
ANSWER = "The capital of France is Paris."


async def ask(
    engine: LlamaEngine,
    messages: list[ChatMessage],
    options: SamplingOptions = GREEDY,
    requester: Requester | None = None,
) -> tuple[list[str], GenerationResult]:
    prompt = await engine.prepare(messages, options)
    handle = engine.submit(prompt, requester or fresh_requester())
    pieces: list[str] = []
    result: GenerationResult | None = None

    async def run() -> None:
        nonlocal result
        async for event in handle.events():
            if isinstance(event, TextPiece):
                pieces.append(event.text)
            elif isinstance(event, GenerationResult):
                result = event

    await asyncio.wait_for(run(), 120)
    assert result is not None
    return pieces, result


async def test_greedy_answer_streams_and_reports_usage(engine: LlamaEngine) -> None:
    pieces, result = await ask(engine, FRANCE)
    assert result.text == ANSWER
    assert "".join(pieces) == ANSWER
    assert len(pieces) > 1  # streamed, not one block
    assert result.finish_reason == "stop"  # the model's end-of-turn token
    usage = result.usage
    assert usage.prompt_tokens > 20
    assert usage.completion_tokens == 7
    assert usage.tokens_per_second > 0
    assert usage.generation_ms > 0


async def test_first_event_is_the_queue_position(engine: LlamaEngine) -> None:
    prompt = await engine.prepare(FRANCE, GREEDY)
    events = [event async for event in engine.submit(prompt, fresh_requester()).events()]
    assert events[0] == QueuePosition(0)
    assert isinstance(events[-1], GenerationResult)


async def test_next_turn_reuses_the_evaluated_prefix(engine: LlamaEngine) -> None:
    conversation = fresh_requester()
    _, first = await ask(engine, FRANCE, requester=conversation)
    _, again = await ask(engine, FRANCE, requester=conversation)
    assert again.usage.cached_prompt_tokens == again.usage.prompt_tokens - 1
    follow_up = [*FRANCE, ChatMessage("assistant", first.text), ChatMessage("user", "And Spain?")]
    _, second = await ask(engine, follow_up, requester=conversation)
    assert second.usage.prompt_tokens > first.usage.prompt_tokens
    assert second.usage.cached_prompt_tokens >= first.usage.prompt_tokens


async def test_max_tokens_ends_with_length(engine: LlamaEngine) -> None:
    pieces, result = await ask(engine, FRANCE, SamplingOptions(temperature=0.0, max_tokens=3))
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 3
    assert result.text == "The capital of"
    assert "".join(pieces) == result.text


async def test_stop_string_split_across_tokens_is_not_emitted(engine: LlamaEngine) -> None:
    # " capital", " of" and " France" are separate tokens; the stop string spans them.
    options = SamplingOptions(temperature=0.0, max_tokens=16, stop=("pital of Fr",))
    pieces, result = await ask(engine, FRANCE, options)
    assert result.finish_reason == "stop"
    assert result.text == "The ca"
    assert "".join(pieces) == "The ca"


async def test_same_seed_same_text(engine: LlamaEngine) -> None:
    # Each reply is decoded alone: the same batch shapes, so the same logits.
    messages = [ChatMessage("user", "Write a short poem about the sea.")]
    options = SamplingOptions(temperature=1.0, seed=1234, max_tokens=12)
    _, first = await ask(engine, messages, options)
    await ask(engine, FRANCE)  # something else in between changes the context's contents
    _, second = await ask(engine, messages, options)
    assert second.text == first.text
    others = [
        (await ask(engine, messages, SamplingOptions(temperature=1.0, seed=s, max_tokens=12)))[1]
        for s in (1, 2)
    ]
    assert any(other.text != first.text for other in others)


async def test_emoji_and_cjk_split_by_the_tokenizer_come_out_whole(
    engine: LlamaEngine, runtime: LlamaRuntime
) -> None:
    text = "Tokyo 東京 🎉🦀 ok"
    tokens = runtime.tokenize(text)
    chunks = [runtime.token_bytes(t) for t in tokens]
    assert any(
        chunk.decode("utf-8", errors="ignore") != chunk.decode("utf-8", "replace")
        for chunk in chunks
    )  # some token is a partial character
    reply = ReplyText(())
    pieces = [reply.push(chunk) for chunk in chunks] + [reply.finish()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces)


async def test_generated_non_ascii_pieces_are_valid_text(engine: LlamaEngine) -> None:
    messages = [ChatMessage("user", "Translate to Chinese and Japanese: good morning 🌞")]
    pieces, result = await ask(engine, messages, SamplingOptions(temperature=0.0, max_tokens=20))
    assert "".join(pieces) == result.text
    assert any(ord(char) > 0x2FFF for char in result.text)  # CJK or emoji came out
    assert all("\ufffd" not in piece for piece in pieces)
