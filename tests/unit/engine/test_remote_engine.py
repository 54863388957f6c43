"""RemoteEngine on a fake OpenAI-compatible server: what it learns from each kind of
server, how it counts, what it sends, the usage it reports, and its local bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from tests.fakes.openai_server import FakeOpenAIServer, sse, text_chunk

from llamaql.config import load_config
from llamaql.engine.remote.engine import RemoteEngine
from llamaql.ports.engine import (
    ChatMessage,
    ContextOverflowError,
    EngineError,
    EngineEvent,
    EngineUnavailableError,
    GenerationResult,
    QueueFullError,
    QueuePosition,
    Requester,
    SamplingOptions,
    TextPiece,
    Usage,
)

MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello")]
ALICE = Requester("alice", "c1")


@asynccontextmanager
async def running(server: FakeOpenAIServer, **settings: Any) -> AsyncIterator[RemoteEngine]:
    options = {
        "engine_url": "http://gpu-host:8080/v1",
        "engine_api_key": "k-123",
        "stream_interval_ms": 0,
        **settings,
    }
    config = load_config(**options)
    engine = RemoteEngine(config.engine, config.remote, transport=server.transport())
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def drain(events: AsyncIterator[EngineEvent]) -> list[EngineEvent]:
    return [event async for event in events]


async def test_llama_server_context_counting_request_and_usage() -> None:
    server = FakeOpenAIServer("llama-server", context=1024)
    async with running(server, context_size=2048) as engine:
        info = engine.info()
        assert (info.engine, info.engine_server, info.context_size) == (
            "remote",
            "llama-server",
            1024,
        )
        prompt = await engine.prepare(MESSAGES, SamplingOptions(temperature=0.0, max_tokens=8))
        rendered = server.bodies("/tokenize")[-1]["content"]
        assert len(prompt.tokens) == len(rendered.split())
        assert prompt.messages == tuple(MESSAGES)
        events = await drain(engine.submit(prompt, ALICE).events())
    assert [e for e in events if isinstance(e, TextPiece)] == [TextPiece("Hello")]
    result = events[-1]
    assert isinstance(result, GenerationResult)
    assert result.text == "Hello"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(
        prompt_tokens=21,
        cached_prompt_tokens=3,
        completion_tokens=2,
        prompt_ms=12.5,
        generation_ms=40.0,
        tokens_per_second=50.0,
    )
    stream = next(r for r in server.requests if r.url.path == "/v1/chat/completions")
    assert stream.headers["authorization"] == "Bearer k-123"
    body = server.bodies("/v1/chat/completions")[0]
    assert body["model"] == "fake-model"
    assert body["temperature"] == 0.0
    assert body["max_tokens"] == 8
    assert body["stream_options"] == {"include_usage": True}


async def test_vllm_context_comes_from_max_model_len_and_counts_messages() -> None:
    server = FakeOpenAIServer("vllm", context=300)
    async with running(server) as engine:
        assert engine.info().engine_server == "vllm"
        assert engine.info().context_size == 300
        prompt = await engine.prepare(MESSAGES, SamplingOptions(max_tokens=8))
    counted = server.bodies("/tokenize")[-1]
    assert counted["model"] == "fake-model"
    assert counted["messages"][-1] == {"role": "user", "content": "Say hello"}
    assert len(prompt.tokens) > 0


async def test_without_a_tokenizer_the_budget_is_estimated_and_the_server_probed() -> None:
    server = FakeOpenAIServer("openai-compatible")
    async with running(server, context_size=256) as engine:
        assert engine.info().engine_server == "openai-compatible"
        listed = len([r for r in server.requests if r.url.path == "/v1/models"])
        prompt = await engine.prepare(MESSAGES, SamplingOptions(max_tokens=8))
        assert len([r for r in server.requests if r.url.path == "/v1/models"]) == listed + 1
        assert len(prompt.tokens) > 10
        with pytest.raises(ContextOverflowError):
            await engine.prepare([ChatMessage("user", "word " * 400)], SamplingOptions())


async def test_the_oldest_turns_are_dropped_and_not_sent() -> None:
    server = FakeOpenAIServer("llama-server", context=200)
    history = [
        ChatMessage("system", "S"),
        ChatMessage("user", "old " * 250),
        ChatMessage("assistant", "reply"),
        ChatMessage("user", "new question"),
    ]
    async with running(server) as engine:
        prompt = await engine.prepare(history, SamplingOptions(max_tokens=16))
        assert prompt.dropped_messages == 2
        await drain(engine.submit(prompt, ALICE).events())
    sent = server.bodies("/v1/chat/completions")[0]["messages"]
    assert [m["content"] for m in sent] == ["S", "new question"]


async def test_an_error_event_after_some_text_fails_the_reply() -> None:
    server = FakeOpenAIServer(reply=sse(text_chunk("Par"), {"error": {"message": "slot died"}}))
    async with running(server) as engine:
        prompt = await engine.prepare(MESSAGES, SamplingOptions(max_tokens=8))
        events = engine.submit(prompt, ALICE).events()
        assert await _next(events, TextPiece) == TextPiece("Par")
        with pytest.raises(EngineError, match="slot died"):
            await _next(events, GenerationResult)


async def _next(events: AsyncIterator[EngineEvent], kind: type) -> EngineEvent:
    while True:
        event = await asyncio.wait_for(anext(events), 5)
        if isinstance(event, kind):
            return event


async def test_parallel_and_queue_size_bound_what_is_in_flight() -> None:
    server = FakeOpenAIServer("llama-server", hold=asyncio.Event())
    async with running(server, parallel=1, queue_size=1) as engine:
        prompt = await engine.prepare(MESSAGES, SamplingOptions(max_tokens=8))
        first = engine.submit(prompt, ALICE)
        second = engine.submit(prompt, Requester("bob", "c2"))
        second_events = second.events()
        assert await _next(second_events, QueuePosition) == QueuePosition(1)
        assert engine.load().active == 1
        assert engine.load().waiting == 1
        assert not engine.has_room()
        with pytest.raises(QueueFullError):
            engine.submit(prompt, Requester("carol", "c3"))
        first.cancel()  # closes the first stream: the second starts
        cancelled = (await drain(first.events()))[-1]
        assert isinstance(cancelled, GenerationResult)
        assert cancelled.finish_reason == "cancelled"
        assert await _next(second_events, QueuePosition) == QueuePosition(0)
        assert server.hold is not None
        server.hold.set()
        done = await _next(second_events, GenerationResult)
        assert isinstance(done, GenerationResult)
        assert done.text == "Hello"


async def test_an_unreachable_server_is_reported_at_prepare_not_at_start() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server = FakeOpenAIServer()
    server._handle = refuse  # type: ignore[method-assign]
    async with running(server) as engine:
        assert engine.info().engine_server == "not reached yet"
        with pytest.raises(EngineUnavailableError):
            await engine.prepare(MESSAGES, SamplingOptions())
        assert engine.load().reachable is False


async def test_load_tells_whether_the_server_answered_last() -> None:
    server = FakeOpenAIServer()
    answer = server._handle
    down = False

    def maybe_refuse(request: httpx.Request) -> Any:
        if down:
            raise httpx.ConnectError("connection refused", request=request)
        return answer(request)

    server._handle = maybe_refuse  # type: ignore[method-assign]
    async with running(server) as engine:
        assert engine.load().reachable is True  # it answered at start
        prompt = await engine.prepare(MESSAGES, SamplingOptions(max_tokens=4))
        down = True
        with pytest.raises(EngineUnavailableError):
            await drain(engine.submit(prompt, ALICE).events())
        assert engine.load().reachable is False
        down = False
        done = (await drain(engine.submit(prompt, ALICE).events()))[-1]
        assert isinstance(done, GenerationResult)
        assert engine.load().reachable is True


def test_the_remote_engine_needs_a_url() -> None:
    config = load_config()
    with pytest.raises(EngineError, match="LLAMAQL_ENGINE_URL"):
        RemoteEngine(config.engine, config.remote)
