"""Queue and scheduling logic of LlamaEngine, on a fake model runtime."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from gguf import GGUFWriter

from llamaql.engine.engine import LlamaEngine
from llamaql.engine.options import ResolvedOptions
from llamaql.engine.runtime import LoadConfig, RuntimeFacts
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
from llamaql.settings import load_settings

EOG = 256
WAIT = 10.0  # generous bound for thread hand-offs; never a timing assertion


class FakeSampler:
    def __init__(self, runtime: FakeRuntime) -> None:
        self._runtime = runtime
        self._reply = iter(runtime.reply.encode())

    def sample(self) -> int:
        self._runtime.samples += 1
        if self._runtime.on_sample is not None:
            self._runtime.on_sample(self._runtime.samples)
        return next(self._reply, EOG)

    def close(self) -> None:
        pass


class FakeRuntime:
    """Bytes as tokens; prompts containing a held marker wait until it is released."""

    facts = RuntimeFacts(context_size=512, backend="cpu", device="fake", gpu_layers=0, threads=1)

    def __init__(self) -> None:
        self.reply = "hello"
        self.evaluated: list[str] = []
        self.holds: dict[str, threading.Event] = {}
        self.started = threading.Condition()
        self.fail_marker: str | None = None
        self.on_sample: Callable[[int], None] | None = None
        self.samples = 0
        self.resets = 0

    def hold(self, marker: str) -> threading.Event:
        self.holds[marker] = threading.Event()
        return self.holds[marker]

    def wait_started(self, marker: str) -> bool:
        with self.started:
            return self.started.wait_for(lambda: any(marker in p for p in self.evaluated), WAIT)

    def tokenize(self, text: str) -> list[int]:
        return list(text.encode())

    def token_bytes(self, token: int) -> bytes:
        return bytes([token])

    def is_eog(self, token: int) -> bool:
        return token == EOG

    def evaluate(self, tokens: Sequence[int], cancelled: Callable[[], bool]) -> int | None:
        text = bytes(tokens).decode()
        with self.started:
            self.evaluated.append(text)
            self.started.notify_all()
        for marker, gate in self.holds.items():
            if marker in text:
                while not gate.wait(0.01):
                    if cancelled():
                        return None
        if self.fail_marker is not None and self.fail_marker in text:
            raise RuntimeError("injected failure")
        return 0

    def new_sampler(self, options: ResolvedOptions) -> FakeSampler:
        return FakeSampler(self)

    def append(self, token: int) -> None:
        pass

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass


def tiny_gguf(path: Path) -> Path:
    writer = GGUFWriter(path, "llama")
    writer.add_name("Fake")
    writer.add_context_length(512)
    writer.add_chat_template("{% for m in messages %}[{{ m['content'] }}]{% endfor %}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
async def engine(tmp_path: Path, runtime: FakeRuntime) -> AsyncIterator[LlamaEngine]:
    settings = load_settings(model_path=tiny_gguf(tmp_path / "fake.gguf"), queue_size=2)

    def factory(config: LoadConfig) -> FakeRuntime:
        return runtime

    engine = LlamaEngine(settings, runtime_factory=factory)
    await engine.start()
    yield engine
    for gate in runtime.holds.values():
        gate.set()
    await engine.stop()


async def submit(engine: LlamaEngine, text: str) -> GenerationHandle:
    prompt = await engine.prepare([ChatMessage("user", text)], SamplingOptions())
    return engine.submit(prompt, SamplingOptions())


async def collect(handle: GenerationHandle) -> list[EngineEvent]:
    async def run() -> list[EngineEvent]:
        return [event async for event in handle.events()]

    return await asyncio.wait_for(run(), WAIT)


async def next_event(stream: AsyncIterator[EngineEvent]) -> EngineEvent:
    return await asyncio.wait_for(anext(stream), WAIT)


async def test_positions_move_as_the_queue_moves(engine: LlamaEngine, runtime: FakeRuntime) -> None:
    gate = runtime.hold("A")
    a = await submit(engine, "A")
    assert await asyncio.to_thread(runtime.wait_started, "A")
    b, c = await submit(engine, "B"), await submit(engine, "C")
    c_events = c.events()
    assert await next_event(c_events) == QueuePosition(2)
    b.cancel()
    assert await collect(b) == [
        QueuePosition(1),
        GenerationResult(text="", finish_reason="cancelled"),
    ]
    assert await next_event(c_events) == QueuePosition(1)
    gate.set()
    a_events = await collect(a)
    assert a_events[0] == QueuePosition(0)
    assert isinstance(a_events[-1], GenerationResult)
    assert a_events[-1].text == "hello"
    assert await next_event(c_events) == QueuePosition(0)
    rest = [event async for event in c_events]
    assert "".join(e.text for e in rest if isinstance(e, TextPiece)) == "hello"
    assert not any("B" in prompt for prompt in runtime.evaluated)  # never reached the model


async def test_full_queue_refuses_at_once(engine: LlamaEngine, runtime: FakeRuntime) -> None:
    gate = runtime.hold("A")
    handles = [await submit(engine, "A")]
    assert await asyncio.to_thread(runtime.wait_started, "A")
    handles += [await submit(engine, "B"), await submit(engine, "C")]
    assert not engine.has_room()
    with pytest.raises(QueueFullError, match="queue is full"):
        await submit(engine, "D")
    gate.set()
    for handle in handles:
        result = (await collect(handle))[-1]
        assert isinstance(result, GenerationResult)
        assert result.finish_reason == "stop"
    assert engine.has_room()


async def test_cancel_while_running_stops_within_one_token(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    runtime.reply = "abcdefghij"
    handles: list[GenerationHandle] = []
    runtime.on_sample = lambda n: handles[0].cancel() if n == 3 else None
    handles.append(await submit(engine, "A"))
    events = await collect(handles[0])
    result = events[-1]
    assert isinstance(result, GenerationResult)
    assert result.finish_reason == "cancelled"
    assert result.usage.completion_tokens == 3
    assert result.text == "abc" == "".join(e.text for e in events if isinstance(e, TextPiece))
    runtime.on_sample = None
    after = (await collect(await submit(engine, "next")))[-1]
    assert isinstance(after, GenerationResult)
    assert after.text == "abcdefghij"


async def test_a_failing_request_does_not_stop_the_worker(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    runtime.fail_marker = "boom"
    with pytest.raises(EngineError, match="injected failure"):
        await collect(await submit(engine, "boom"))
    assert runtime.resets == 1
    result = (await collect(await submit(engine, "fine")))[-1]
    assert isinstance(result, GenerationResult)
    assert result.text == "hello"


async def test_abandoned_stream_cancels_its_request(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    runtime.hold("A")
    a = await submit(engine, "A")
    stream = a.events()
    assert await next_event(stream) == QueuePosition(0)
    assert await asyncio.to_thread(runtime.wait_started, "A")
    assert isinstance(stream, AsyncGenerator)
    await stream.aclose()  # the client went away
    result = (await collect(await submit(engine, "B")))[-1]
    assert isinstance(result, GenerationResult)
    assert result.text == "hello"


async def test_stop_cancels_running_and_queued_then_refuses(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    settings = load_settings(model_path=tiny_gguf(tmp_path / "f.gguf"), queue_size=2)
    engine = LlamaEngine(settings, runtime_factory=lambda config: runtime)
    await engine.start()
    runtime.hold("A")
    a = await submit(engine, "A")
    assert await asyncio.to_thread(runtime.wait_started, "A")
    b = await submit(engine, "B")
    await asyncio.wait_for(engine.stop(), WAIT)
    for handle in (a, b):
        result = (await collect(handle))[-1]
        assert isinstance(result, GenerationResult)
        assert result.finish_reason == "cancelled"
    with pytest.raises(EngineError, match="not running"):
        engine.submit(a.prompt, SamplingOptions())  # type: ignore[attr-defined]
