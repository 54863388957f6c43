"""Decode lanes: several schedulers, each with its own context, taking from one fair
queue (engine/admission.py, LlamaEngine with LLAMAQL_DECODE_LANES), on the fake runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.eventually import eventually
from tests.fakes.native import FakeRuntime
from tests.unit.engine.test_batching import result_of, submit, tiny_gguf, who

from llamaql.config import load_config
from llamaql.container import shared_start
from llamaql.engine.admission import AdmissionQueue
from llamaql.engine.jobs import Job
from llamaql.engine.local.engine import LlamaEngine
from llamaql.engine.local.loading import decode_lanes, resolve_load_config
from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.engine.local.runtime import LoadConfig
from llamaql.ports.engine import ChatMessage, PreparedPrompt, Requester, SamplingOptions
from llamaql.ports.options import resolve_options


def job(requester: Requester, *, home: int | None = None, background: bool = False) -> Job:
    options = resolve_options(SamplingOptions(), context_size=512)
    prompt = PreparedPrompt(text="x", tokens=(1, 2), dropped_messages=0, options=options)
    loop = asyncio.get_running_loop()
    return Job(prompt, requester, loop, background=background, home=home)


def two_lanes(free: int = 2) -> AdmissionQueue:
    queue = AdmissionQueue(8)
    queue.set_free(free, lane=0)
    queue.set_free(free, lane=1)
    return queue


async def test_a_burst_is_shared_out_between_the_lanes() -> None:
    queue = two_lanes()
    jobs = [job(who(user)) for user in "abc"]
    for one in jobs:
        queue.put(one)
    assert queue.pop(lane=0) is jobs[0]
    assert queue.pop(lane=0) is jobs[1]  # its share of three: two
    assert queue.pop(lane=0) is None  # the third is lane 1's
    assert queue.pop(lane=1) is jobs[2]
    queue.put(late := job(who("d")))
    assert queue.pop(lane=0) is None  # lane 0 holds its share of four already
    assert queue.pop(lane=1) is late


async def test_a_job_waits_for_the_lane_holding_its_kv_while_that_lane_has_room() -> None:
    queue = two_lanes()
    homed = job(who("a"), home=1)
    queue.put(homed)
    assert queue.pop(lane=0) is None
    queue.set_free(0, lane=1, live=2)  # its lane is full: any lane takes it
    assert queue.pop(lane=0) is homed


async def test_a_job_goes_home_even_to_the_busier_lane() -> None:
    queue = two_lanes()
    queue.set_free(1, lane=1, live=1)
    homed = job(who("a"), home=1)
    queue.put(homed)
    assert queue.pop(lane=1) is homed


async def test_background_work_waits_until_no_lane_has_a_reply() -> None:
    queue = two_lanes()
    queue.set_free(1, lane=1, live=1)
    title = job(who("a"), background=True)
    queue.put(title)
    assert queue.pop(lane=0) is None
    queue.set_free(2, lane=1, live=0)
    assert queue.pop(lane=0) is title


async def test_two_idle_lanes_start_one_title_at_a_time() -> None:
    queue = two_lanes()
    titles = [job(who(user), background=True) for user in "ab"]
    for title in titles:
        queue.put(title)
    assert queue.pop(lane=0) is titles[0]
    assert queue.pop(lane=1) is None
    queue.set_free(2, lane=0, live=0)  # the first one ended
    assert queue.pop(lane=1) is titles[1]


async def test_one_lane_keeps_the_plain_fair_order() -> None:
    queue = AdmissionQueue(8)
    queue.set_free(2)
    jobs = [job(who("a"), home=3), job(who("b"))]  # a stale home means nothing here
    for one in jobs:
        queue.put(one)
    assert [queue.pop(), queue.pop()] == jobs


# The engine's lanes.


@pytest.fixture(params=[4, 2], ids=["2+2", "1+1"])
async def lanes(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[LlamaEngine, list[FakeRuntime]]]:
    """Two lanes of LLAMAQL_PARALLEL / 2 sequences each."""
    parallel: int = request.param
    runtimes: list[FakeRuntime] = []
    model = tiny_gguf(tmp_path / "fake.gguf")
    loaded = load_config(
        model_path=model,
        kv_dir=tmp_path / "kv",
        n_gpu_layers=0,
        stream_interval_ms=0,
        parallel=parallel,
        decode_lanes=2,
    )

    def factory(config: LoadConfig) -> FakeRuntime:
        assert config.sequences == parallel // 2  # LLAMAQL_PARALLEL split evenly
        runtimes.append(FakeRuntime(sequences=config.sequences))
        return runtimes[-1]

    engine = LlamaEngine(
        loaded.engine, shared_start=shared_start(loaded.chat), runtime_factory=factory
    )
    await engine.start()
    yield engine, runtimes
    for runtime in runtimes:
        runtime.gate.set()
    await engine.stop()


async def test_replies_of_a_burst_decode_in_both_lanes(
    lanes: tuple[LlamaEngine, list[FakeRuntime]],
) -> None:
    engine, runtimes = lanes
    per_lane = runtimes[0].facts.sequences
    await eventually(lambda: all(r.saves for r in runtimes))  # the shared prompt start saved
    for runtime in runtimes:
        runtime.gate.clear()
    options = SamplingOptions(max_tokens=200)
    prompts = [
        await engine.prepare([ChatMessage("user", "hi")], options) for _ in range(2 * per_lane)
    ]
    for _ in prompts:
        engine.expect_reply()  # as sends do: the burst's first step waits for the rest
    handles = [
        engine.submit(prompt, who(user)) for prompt, user in zip(prompts, "abcd", strict=False)
    ]
    await eventually(
        lambda: [len(r.admitted) for r in runtimes], holds=lambda n: n == [per_lane] * 2
    )
    assert engine.load().active == 2 * per_lane
    for runtime in runtimes:
        runtime.gate.set()
    for handle in handles:
        assert (await result_of(handle)).finish_reason == "stop"


async def test_a_conversation_goes_back_to_the_lane_holding_its_kv(
    lanes: tuple[LlamaEngine, list[FakeRuntime]],
) -> None:
    engine, runtimes = lanes
    await eventually(lambda: all(r.saves for r in runtimes))  # the shared prompt start saved
    for runtime in runtimes:
        runtime.gate.clear()
    first = [await submit(engine, "hi", who(user), seed=n) for n, user in enumerate("ab")]
    await eventually(lambda: [len(r.admitted) for r in runtimes], holds=lambda n: n == [1, 1])
    for runtime in runtimes:
        runtime.gate.set()
    for handle in first:
        await result_of(handle)
    lane_of_b = next(n for n, runtime in enumerate(runtimes) if runtime.admitted == [1])
    # Both lanes are idle; b's next turn goes where its KV is, and reuses it.
    result = await result_of(await submit(engine, "hi again", who("b"), seed=2))
    assert runtimes[lane_of_b].admitted == [1, 2]
    assert result.usage.cached_prompt_tokens > 0


async def test_lanes_are_one_by_default_and_split_the_sequences_evenly(tmp_path: Path) -> None:
    model = tiny_gguf(tmp_path / "fake.gguf")

    def lanes_for(**settings: object) -> int:
        config = load_config(model_path=model, n_gpu_layers=0, **settings).engine
        return decode_lanes(config, resolve_load_config(config, read_gguf_metadata(model)))

    assert lanes_for(parallel=4) == 1
    assert lanes_for(parallel=4, decode_lanes=2) == 2
    assert lanes_for(parallel=3, decode_lanes=2) == 1  # would not split evenly
    assert lanes_for(parallel=2, decode_lanes=4) == 2  # at most one per sequence
    assert lanes_for(parallel=6, decode_lanes=4) == 1  # 6 / 4
