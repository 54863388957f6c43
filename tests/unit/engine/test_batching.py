"""LlamaEngine's scheduling on the fake native seam: batches, admission, KV reuse, cancel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest
from gguf import GGUFWriter
from tests.eventually import eventually
from tests.fakes.native import WAIT, FakeRuntime

from llamaql.config import DEFAULT_SYSTEM_PROMPT, load_config
from llamaql.container import shared_start
from llamaql.engine import admission
from llamaql.engine.local import scheduler
from llamaql.engine.local.engine import LlamaEngine
from llamaql.engine.local.runtime import LoadConfig
from llamaql.engine.local.scheduler import BACKGROUND_CHUNK
from llamaql.ports.engine import (
    ChatMessage,
    EngineError,
    EngineEvent,
    EngineLoad,
    GenerationHandle,
    GenerationResult,
    QueueFullError,
    QueuePosition,
    Requester,
    SamplingOptions,
)

LONG = "abcdefghijklmnopqrstuvwxyz" * 4


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


async def started_engine(tmp_path: Path, runtime: FakeRuntime, **settings: object) -> LlamaEngine:
    model = tmp_path / "fake.gguf"  # written once: a rewritten model is another model
    loaded = load_config(
        model_path=model if model.is_file() else tiny_gguf(model),
        kv_dir=tmp_path / "kv",
        n_gpu_layers=0,
        stream_interval_ms=0,
        **settings,
    )

    def factory(config: LoadConfig) -> FakeRuntime:
        assert config.sequences == loaded.engine.parallel
        return runtime

    engine = LlamaEngine(
        loaded.engine, shared_start=shared_start(loaded.chat), runtime_factory=factory
    )
    await engine.start()
    return engine


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(sequences=2)


@pytest.fixture
async def engine(tmp_path: Path, runtime: FakeRuntime) -> AsyncIterator[LlamaEngine]:
    engine = await started_engine(tmp_path, runtime, parallel=2, queue_size=3)
    yield engine
    runtime.gate.set()
    await engine.stop()


def who(user: str, conversation: str = "c") -> Requester:
    return Requester(user, f"{user}-{conversation}")


async def submit(
    engine: LlamaEngine, text: str, requester: Requester, seed: int | None = None
) -> GenerationHandle:
    options = SamplingOptions(seed=seed, max_tokens=200)
    prompt = await engine.prepare([ChatMessage("user", text)], options)
    return engine.submit(prompt, requester)


async def collect(handle: GenerationHandle) -> list[EngineEvent]:
    async def run() -> list[EngineEvent]:
        return [event async for event in handle.events()]

    return await asyncio.wait_for(run(), WAIT)


async def result_of(handle: GenerationHandle) -> GenerationResult:
    result = (await collect(handle))[-1]
    assert isinstance(result, GenerationResult)
    return result


def positions(events: list[EngineEvent]) -> list[int]:
    return [event.position for event in events if isinstance(event, QueuePosition)]


async def test_replies_decode_in_one_batch(engine: LlamaEngine, runtime: FakeRuntime) -> None:
    runtime.reply = LONG
    runtime.gate.clear()
    a = await submit(engine, "A", who("a"))
    b = await submit(engine, "B", who("b"))
    runtime.gate.set()
    ra, rb = await asyncio.gather(result_of(a), result_of(b))
    assert ra.text == rb.text == LONG
    shared = [batch for batch in runtime.batches if len(batch) == 2]
    assert shared, "the two replies never shared a batch"
    assert all(len(part.tokens) == 1 for batch in shared[-5:] for part in batch)


async def test_a_joining_prompt_shares_a_batch_with_running_decodes(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    runtime.reply = LONG
    # Hold the scheduler in A's fourth step, so B joins while A is generating.
    runtime.on_sample = lambda n: runtime.gate.clear() if n == 3 else None
    a = await submit(engine, "A", who("a"))
    assert runtime.wait_for(lambda: not runtime.gate.is_set())
    b = await submit(engine, "a longer prompt for B", who("b"))
    runtime.gate.set()
    ra, rb = await asyncio.gather(result_of(a), result_of(b))
    assert ra.text == rb.text == LONG
    mixed = [
        batch
        for batch in runtime.batches
        if sorted(len(part.tokens) > 1 for part in batch) == [False, True]
    ]
    assert mixed, "B's prompt was never evaluated beside A's decoding"


async def test_admission_is_round_robin_across_users(tmp_path: Path) -> None:
    runtime = FakeRuntime(sequences=1)
    engine = await started_engine(tmp_path, runtime, parallel=1, queue_size=8)
    try:
        runtime.gate.clear()  # hold the first reply in its first step
        first = await submit(engine, "a0", who("a", "0"), seed=10)
        assert runtime.wait_for(lambda: runtime.admitted == [10])
        a = [await submit(engine, f"a{i}", who("a", str(i)), seed=10 + i) for i in (1, 2, 3)]
        d = await submit(engine, "d1", who("d"), seed=40)
        runtime.gate.set()
        results = await asyncio.gather(*(collect(h) for h in [first, *a, d]))
        # D waits for none of A's queued replies: it was never served, A was.
        assert runtime.admitted == [10, 40, 11, 12, 13]
        assert positions(results[4]) == [1, 0]  # next at once, then generating
        assert positions(results[1]) == [1, 2, 1, 0]  # a1: next, then behind d1, ...
        assert positions(results[3]) == [3, 4, 3, 2, 1, 0]
    finally:
        await engine.stop()


async def test_a_full_queue_refuses_at_once(engine: LlamaEngine, runtime: FakeRuntime) -> None:
    runtime.gate.clear()  # the first reply's first step holds the scheduler
    live = await submit(engine, "x", who("u"))
    assert runtime.wait_for(lambda: len(runtime.admitted) == 1)
    # queue_size 3, plus one for the free sequence the next step fills.
    waiting = [await submit(engine, f"y{i}", who(f"v{i}")) for i in range(4)]
    assert not engine.has_room()
    with pytest.raises(QueueFullError):
        await submit(engine, "one too many", who("w"))
    runtime.gate.set()
    results = await asyncio.gather(*(collect(h) for h in [live, *waiting]))
    ends = [r[-1] for r in results]
    assert all(isinstance(end, GenerationResult) for end in ends), ends
    assert all(
        end == GenerationResult(text="hello", finish_reason="stop", usage=end.usage)
        for end in ends
        if isinstance(end, GenerationResult)
    )
    # The first waiting reply had a free sequence: it was told it starts next.
    assert positions(results[1]) == [0]
    assert positions(results[2]) == [1, 0]


async def test_load_counts_waiting_and_decoding_replies(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    assert engine.load() == EngineLoad(waiting=0, active=0)
    runtime.gate.clear()  # hold the scheduler in the first reply's first step
    handles = [await submit(engine, "x", who("u"))]
    assert runtime.wait_for(lambda: engine.load() == EngineLoad(waiting=0, active=1))
    handles += [await submit(engine, f"y{i}", who(f"v{i}")) for i in range(2)]
    assert engine.load() == EngineLoad(waiting=2, active=1)
    runtime.gate.set()
    await asyncio.gather(*(collect(handle) for handle in handles))
    assert runtime.wait_for(lambda: engine.load() == EngineLoad(waiting=0, active=0))


async def test_cancelling_one_reply_leaves_its_neighbour_whole(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    runtime.replies = {1: LONG, 2: LONG[::-1]}
    handles: list[GenerationHandle] = []
    runtime.on_sample = lambda n: handles[0].cancel() if n == 9 else None
    runtime.gate.clear()
    handles.append(await submit(engine, "A", who("a"), seed=1))
    handles.append(await submit(engine, "B", who("b"), seed=2))
    runtime.gate.set()
    ra, rb = await asyncio.gather(result_of(handles[0]), result_of(handles[1]))
    assert ra.finish_reason == "cancelled"
    assert 0 < len(ra.text) < len(LONG)
    assert LONG.startswith(ra.text)
    assert (rb.finish_reason, rb.text) == ("stop", LONG[::-1])


async def test_cancel_while_queued_never_reaches_the_model(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    runtime.gate.clear()
    live = [await submit(engine, f"x{i}", who(f"u{i}"), seed=i) for i in range(2)]
    queued = await submit(engine, "q", who("q"), seed=99)
    queued.cancel()
    result = await result_of(queued)
    assert (result.finish_reason, result.text) == ("cancelled", "")
    runtime.gate.set()
    for handle in live:
        await result_of(handle)
    assert 99 not in runtime.admitted


async def test_the_same_conversation_reuses_its_kv_and_no_one_else_does(
    engine: LlamaEngine,
) -> None:
    text = "a question long enough to matter"
    first = await result_of(await submit(engine, text, who("a")))
    assert first.usage.cached_prompt_tokens == 0
    again = await result_of(await submit(engine, text + " and more", who("a")))
    assert again.usage.cached_prompt_tokens == len(text) + 1  # "[" + text
    other_user = await result_of(await submit(engine, text, who("b")))
    other_conversation = await result_of(await submit(engine, text, who("a", "other")))
    assert other_user.usage.cached_prompt_tokens == 0
    assert other_conversation.usage.cached_prompt_tokens == 0


async def test_a_conversation_parked_in_host_memory_comes_back(tmp_path: Path) -> None:
    runtime = FakeRuntime(sequences=1)
    engine = await started_engine(tmp_path, runtime, parallel=1)
    try:
        assert runtime.wait_for(lambda: runtime.saves == 1)  # the shared prompt start
        history = "the history of conversation X"
        await result_of(await submit(engine, history, who("a", "x")))
        await result_of(await submit(engine, "another conversation", who("a", "y")))
        assert runtime.saves == 2
        turn = await result_of(await submit(engine, history + " next", who("a", "x")))
        assert runtime.restores == 1
        assert turn.usage.cached_prompt_tokens == len(history) + 1
    finally:
        await engine.stop()


async def test_parking_off_evaluates_again(tmp_path: Path) -> None:
    runtime = FakeRuntime(sequences=1)
    engine = await started_engine(tmp_path, runtime, parallel=1, prompt_cache_mb=0, kv_disk_mb=0)
    try:
        await result_of(await submit(engine, "conversation X", who("a", "x")))
        await result_of(await submit(engine, "conversation Y", who("a", "y")))
        turn = await result_of(await submit(engine, "conversation X again", who("a", "x")))
        assert (runtime.saves, turn.usage.cached_prompt_tokens) == (1, 0)  # 1: shared start
    finally:
        await engine.stop()


async def test_a_failing_sequence_fails_its_reply_alone(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    runtime.reply = LONG
    runtime.gate.clear()
    bad = await submit(engine, "boom", who("a"))
    good = await submit(engine, "fine", who("b"))
    runtime.fail_marker = b"boom"
    runtime.gate.set()
    with pytest.raises(EngineError, match="status 1"):
        await collect(bad)
    assert (await result_of(good)).text == LONG
    runtime.fail_marker = None
    assert (await result_of(await submit(engine, "boom", who("a")))).text == LONG


async def test_an_abandoned_stream_frees_its_sequence(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    runtime.gate.clear()
    live = [await submit(engine, f"x{i}", who(f"u{i}")) for i in range(2)]
    stream = live[0].events()
    assert await anext(stream) == QueuePosition(0)
    assert isinstance(stream, AsyncGenerator)
    await stream.aclose()  # the client went away
    runtime.gate.set()
    assert (await result_of(await submit(engine, "next", who("n")))).text == "hello"
    await result_of(live[1])


async def test_stop_ends_live_and_queued_then_refuses(tmp_path: Path) -> None:
    runtime = FakeRuntime(sequences=1)
    engine = await started_engine(tmp_path, runtime, parallel=1)
    runtime.gate.clear()
    live = await submit(engine, "A", who("a"))
    assert runtime.wait_for(lambda: len(runtime.admitted) == 1)
    queued = await submit(engine, "B", who("b"))
    stopping = asyncio.create_task(engine.stop())
    # stop() closes the queue first: the queued request leaves it.
    await eventually(engine.load, WAIT, holds=lambda load: load.waiting == 0, what="load")
    runtime.gate.set()
    await asyncio.wait_for(stopping, WAIT)
    for handle in (live, queued):
        assert (await result_of(handle)).finish_reason == "cancelled"
    with pytest.raises(EngineError, match="not running"):
        await submit(engine, "C", who("c"))


async def test_a_background_request_waits_for_every_reply_and_leaves_no_kv(
    tmp_path: Path,
) -> None:
    runtime = FakeRuntime(sequences=1)
    engine = await started_engine(tmp_path, runtime, parallel=1, queue_size=4)
    try:
        runtime.gate.clear()
        first = await submit(engine, "a0", who("a"), seed=1)
        assert runtime.wait_for(lambda: runtime.admitted == [1])
        options = SamplingOptions(seed=2, max_tokens=8)
        prompt = await engine.prepare([ChatMessage("user", "title please")], options)
        title = engine.submit(prompt, who("a", "title"), background=True)
        later = await submit(engine, "b0", who("b"), seed=3)
        runtime.gate.set()
        title_events, *_ = await asyncio.gather(collect(title), collect(first), collect(later))
        assert runtime.admitted == [1, 3, 2]  # the later reply went first
        assert positions(title_events) == []  # never told a place in line
        assert runtime.kv[0] == []  # its sequence was emptied
    finally:
        await engine.stop()


async def test_new_conversations_start_from_the_shared_system_prompt(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    # The default system prompt and the template's markup are nobody's text: evaluated
    # once at start, then copied into each new conversation's sequence, for every user.
    system = ChatMessage("system", DEFAULT_SYSTEM_PROMPT)
    shared = len(f"[{DEFAULT_SYSTEM_PROMPT}][")
    results = []
    for user, text in (("a", "a secret"), ("b", "a secret"), ("b", "unrelated!")):
        prompt = await engine.prepare([system, ChatMessage("user", text)], SamplingOptions())
        results.append(await result_of(engine.submit(prompt, who(user, text))))
    assert [r.usage.cached_prompt_tokens for r in results] == [shared] * 3
    evaluated_first = b"".join(
        bytes(part.tokens) for batch in runtime.batches[:2] for part in batch
    )
    assert evaluated_first.startswith(f"[{DEFAULT_SYSTEM_PROMPT}][".encode())
    own = await engine.prepare([system, ChatMessage("user", "my own prompt")], SamplingOptions())
    assert (await result_of(engine.submit(own, who("c")))).usage.cached_prompt_tokens == shared


async def test_a_background_request_never_shares_a_step_with_a_reply(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    runtime.reply = LONG
    runtime.gate.clear()
    reply = await submit(engine, "a0", who("a"), seed=1)
    assert runtime.wait_for(lambda: runtime.admitted == [1])
    options = SamplingOptions(seed=2, max_tokens=8)
    prompt = await engine.prepare([ChatMessage("user", "title please")], options)
    title = engine.submit(prompt, who("a", "title"), background=True)
    runtime.gate.set()
    await asyncio.gather(collect(reply), collect(title))
    assert runtime.admitted == [1, 2]
    # A sequence was free all along, but the title waited until the reply was done.
    title_steps = [i for i, batch in enumerate(runtime.batches) if any(p.seq == 1 for p in batch)]
    reply_steps = [i for i, batch in enumerate(runtime.batches) if any(p.seq == 0 for p in batch)]
    assert title_steps
    assert reply_steps
    assert not set(title_steps) & set(reply_steps)


async def title_held_in_its_fourth_step(
    engine: LlamaEngine, runtime: FakeRuntime, title: str, max_tokens: int
) -> GenerationHandle:
    """A title (seed 2) decoding alone, the scheduler held in its fourth step."""
    runtime.replies = {2: title, 1: LONG}
    runtime.on_sample = lambda n: runtime.gate.clear() if n == 3 else None
    options = SamplingOptions(seed=2, max_tokens=max_tokens)
    prompt = await engine.prepare([ChatMessage("user", "title please")], options)
    handle = engine.submit(prompt, who("a", "title"), background=True)
    assert runtime.wait_for(lambda: not runtime.gate.is_set())
    return handle


async def test_a_reply_takes_the_sequence_and_the_steps_of_a_running_title(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    # Two sequences, both idle: a title starts; a reply arriving mid-title starts in the
    # next step without sharing it, and the title starts over once the engine is idle.
    title = await title_held_in_its_fourth_step(engine, runtime, "a title", max_tokens=8)
    steps_before = len(runtime.batches)
    reply = await submit(engine, "B", who("b"), seed=1)
    runtime.on_sample = None
    runtime.gate.set()
    reply_events, title_events = await asyncio.gather(collect(reply), collect(title))
    assert runtime.admitted == [2, 1, 2]  # the title was stopped and started over
    reply_prompt = tuple(b"[B]")
    first_reply_step = next(
        i
        for i, batch in enumerate(runtime.batches)
        if any(part.tokens == reply_prompt for part in batch)
    )
    # At most the title step the scheduler was held in, then the reply's.
    assert first_reply_step <= steps_before + 1
    assert all(len(batch) == 1 for batch in runtime.batches), "a title shared a step"
    title_result = title_events[-1]
    assert isinstance(title_result, GenerationResult)
    assert title_result.text == "a title"  # from its second start; no text events
    assert title_events == [title_result]
    reply_result = reply_events[-1]
    assert isinstance(reply_result, GenerationResult)
    assert reply_result.text == LONG


async def test_background_requests_run_one_at_a_time(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    options = SamplingOptions(seed=2, max_tokens=8)
    prompt = await engine.prepare([ChatMessage("user", "title please")], options)
    runtime.gate.clear()
    titles = [engine.submit(prompt, who(user, "title"), background=True) for user in "ab"]
    runtime.gate.set()
    await asyncio.gather(*(collect(title) for title in titles))
    assert runtime.admitted == [2, 2]
    assert all(len(batch) == 1 for batch in runtime.batches), "two titles shared a step"


async def test_a_background_prompt_is_evaluated_in_small_steps(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    # A reply arriving mid-title waits for the step under way: keep that step short.
    options = SamplingOptions(seed=2, max_tokens=4)
    prompt = await engine.prepare([ChatMessage("user", LONG)], options)
    before = len(runtime.batches)  # the shared system prompt's, evaluated at start
    await collect(engine.submit(prompt, who("a", "title"), background=True))
    sizes = [len(part.tokens) for batch in runtime.batches[before:] for part in batch]
    assert max(sizes) == BACKGROUND_CHUNK
    assert sum(sizes) >= len(LONG)


async def test_a_reply_request_that_has_begun_pauses_background_work(
    engine: LlamaEngine, runtime: FakeRuntime
) -> None:
    # `expect_reply` (a send's database work under way): the running title stops at the
    # next step and none starts while the hold lasts; the reply then runs alone, and
    # the title starts over after it.
    title = await title_held_in_its_fourth_step(engine, runtime, "a title", max_tokens=8)
    engine.expect_reply()
    runtime.on_sample = None
    runtime.gate.set()
    assert runtime.wait_for(lambda: engine.load().active == 0)  # stopped, not restarted
    assert runtime.admitted == [2]
    reply = await submit(engine, "B", who("b"), seed=1)
    title_events, _ = await asyncio.gather(collect(title), collect(reply))
    assert runtime.admitted == [2, 1, 2]
    assert all(len(batch) == 1 for batch in runtime.batches)
    assert isinstance(title_events[-1], GenerationResult)
    assert title_events[-1].text == "a title"


async def test_a_cancelled_title_is_not_requeued(engine: LlamaEngine, runtime: FakeRuntime) -> None:
    title = await title_held_in_its_fourth_step(engine, runtime, LONG, max_tokens=200)
    reply = await submit(engine, "B", who("b"), seed=1)
    title.cancel()
    runtime.on_sample = None
    runtime.gate.set()
    title_result, _ = await asyncio.gather(result_of(title), result_of(reply))
    assert title_result.finish_reason == "cancelled"
    assert runtime.admitted == [2, 1]  # never started again


async def test_a_batch_lists_its_sequences_in_increasing_order(tmp_path: Path) -> None:
    # llama.cpp cuts a batch over separate KV streams wherever the sequence id does not
    # go up by one: admission order must not reach the batch.
    runtime = FakeRuntime(sequences=3)
    engine = await started_engine(tmp_path, runtime, parallel=3)
    try:
        # Sequence 0 is the most recently used, so three new conversations admitted
        # together take sequences 1, 2 and then 0.
        await result_of(await submit(engine, "first", who("z")))
        runtime.reply = LONG
        runtime.gate.clear()
        handles = [await submit(engine, f"prompt {user}", who(user)) for user in "abc"]
        runtime.gate.set()
        await asyncio.gather(*(result_of(handle) for handle in handles))
    finally:
        await engine.stop()
    together = [batch for batch in runtime.batches if len(batch) == 3]
    assert together, "the three replies never shared a batch"
    for batch in runtime.batches:
        seqs = [part.seq for part in batch]
        assert seqs == sorted(seqs), seqs


async def test_a_new_conversation_takes_the_sequence_that_keeps_the_batch_in_one_run(
    tmp_path: Path,
) -> None:
    runtime = FakeRuntime(sequences=3)
    engine = await started_engine(tmp_path, runtime, parallel=3)
    try:
        # Sequences by last use: 2 (never), 0, 1. A takes 2; the least recently used
        # slot left is 0, but B beside A in 1 keeps their batch one run (1, 2).
        await result_of(await submit(engine, "first", who("z")))
        await result_of(await submit(engine, "second", who("y")))
        runtime.reply = LONG
        # Hold the scheduler in A's third step, so B joins while A is generating.
        start = runtime.samples
        runtime.on_sample = lambda n: runtime.gate.clear() if n == start + 2 else None
        a = await submit(engine, "prompt a", who("a"))
        assert runtime.wait_for(lambda: not runtime.gate.is_set())
        b = await submit(engine, "prompt b", who("b"))
        runtime.gate.set()
        await asyncio.gather(result_of(a), result_of(b))
    finally:
        await engine.stop()
    together = [[part.seq for part in batch] for batch in runtime.batches if len(batch) == 2]
    assert together, "A and B never shared a batch"
    assert all(seqs == [1, 2] for seqs in together), together


async def test_a_returning_conversation_moves_its_kv_to_close_a_gap(tmp_path: Path) -> None:
    runtime = FakeRuntime(sequences=3)
    engine = await started_engine(tmp_path, runtime, parallel=3)
    try:
        history = "the history of conversation X"
        await result_of(await submit(engine, history, who("x")))  # sequence 0
        await result_of(await submit(engine, "conversation Y", who("y")))  # sequence 1
        runtime.reply = LONG
        start = runtime.samples
        runtime.on_sample = lambda n: runtime.gate.clear() if n == start + 2 else None
        a = await submit(engine, "prompt a", who("a"))  # sequence 2, least recently used
        assert runtime.wait_for(lambda: not runtime.gate.is_set())
        # X's own sequence 0 beside A's 2 would be two runs: its KV moves to 1.
        x = await submit(engine, history + " next", who("x"))
        runtime.gate.set()
        turn = (await asyncio.gather(result_of(x), result_of(a)))[0]
    finally:
        await engine.stop()
    assert turn.usage.cached_prompt_tokens == len(history) + 1  # moved, not evaluated again
    together = [[part.seq for part in batch] for batch in runtime.batches if len(batch) == 2]
    assert together, "X and A never shared a batch"
    assert all(seqs == [1, 2] for seqs in together), together


async def test_a_burst_of_sends_starts_in_one_step(
    engine: LlamaEngine, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sends begun together (expect_reply, before their database work) reach the engine
    one after the other, yet the idle engine waits for the announced second one, so both
    prompts go in the burst's first step; a lone send then has nothing to wait for."""
    monkeypatch.setattr(scheduler, "GATHER_S", WAIT)  # only an arrival ends the wait
    monkeypatch.setattr(scheduler, "GATHER_MOST_S", WAIT)
    runtime.reply = "ok"
    before = len(runtime.batches)
    engine.expect_reply()
    engine.expect_reply()
    a = await submit(engine, "A", who("a"))
    b = await submit(engine, "B", who("b"))
    await asyncio.gather(result_of(a), result_of(b))
    first = runtime.batches[before]
    assert len(first) == 2
    assert all(len(part.tokens) > 1 for part in first)

    loop = asyncio.get_running_loop()
    started = loop.time()
    engine.expect_reply()
    await result_of(await submit(engine, "C", who("c")))
    assert loop.time() - started < WAIT / 2  # it never waited for a burst


async def test_an_announced_send_that_never_arrives_is_not_waited_for_long(
    engine: LlamaEngine, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admission, "ANNOUNCED_FOR_S", 0.0)  # refused at once, say
    monkeypatch.setattr(scheduler, "GATHER_S", WAIT)
    monkeypatch.setattr(scheduler, "GATHER_MOST_S", WAIT)
    runtime.reply = "ok"
    engine.expect_reply()  # a send that is refused before it reaches the engine
    loop = asyncio.get_running_loop()
    started = loop.time()
    engine.expect_reply()
    await result_of(await submit(engine, "A", who("a")))
    assert loop.time() - started < WAIT / 2


def test_a_refused_reply_withdraws_its_announcement() -> None:
    # An idle engine gathers the replies announced (a send has begun) but not arrived
    # into its first step: a refused one must not leave the next lone reply waiting.
    queue = admission.AdmissionQueue(4)
    queue.hold_background(1.0)
    queue.hold_background(1.0)
    assert queue.announced() == 2
    queue.withdraw()
    assert queue.announced() == 1
    queue.withdraw()
    queue.withdraw()  # nothing left: nothing happens
    assert queue.announced() == 0
    queue.gather(60.0, 60.0)  # returns at once: nothing is on its way


def test_a_burst_is_gathered_while_its_sends_keep_arriving() -> None:
    queue = admission.AdmissionQueue(4)
    queue.hold_background(1.0)
    started = time.monotonic()
    queue.gather(0.0, WAIT)  # announced, but nothing arrived within the gap
    queue.gather(WAIT, 0.0)  # nor within the whole wait
    assert time.monotonic() - started < WAIT / 2
    assert queue.announced() == 1
