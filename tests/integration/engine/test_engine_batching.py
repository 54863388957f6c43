"""Continuous batching with the real model: replies together, fair order, private KV."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

import pytest
from tests.integration.engine.conftest import SteeredRuntime, fresh_requester

from llamaql.config import DEFAULT_SYSTEM_PROMPT
from llamaql.engine.local.engine import LlamaEngine
from llamaql.ports.engine import (
    ChatMessage,
    GenerationHandle,
    GenerationResult,
    Requester,
    SamplingOptions,
    TextPiece,
)

pytestmark = pytest.mark.model
WAIT = 180.0


def chat(text: str) -> list[ChatMessage]:
    return [ChatMessage("system", DEFAULT_SYSTEM_PROMPT), ChatMessage("user", text)]


@dataclass
class Timeline:
    """The order in which replies' first text and results arrive, across replies."""

    clock: itertools.count[int] = field(default_factory=itertools.count)
    first_text: dict[str, int] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=dict)

    async def follow(self, name: str, handle: GenerationHandle) -> GenerationResult:
        async def run() -> GenerationResult:
            async for event in handle.events():
                if isinstance(event, TextPiece):
                    self.first_text.setdefault(name, next(self.clock))
                elif isinstance(event, GenerationResult):
                    self.finished[name] = next(self.clock)
                    return event
            raise AssertionError(f"{name} ended without a result")

        return await asyncio.wait_for(run(), WAIT)


async def send(
    engine: LlamaEngine,
    text: str | list[ChatMessage],
    options: SamplingOptions,
    requester: Requester | None = None,
) -> GenerationHandle:
    prompt = await engine.prepare(chat(text) if isinstance(text, str) else text, options)
    return engine.submit(prompt, requester or fresh_requester())


async def test_four_replies_all_start_before_any_finishes(engine: LlamaEngine) -> None:
    # One reply alone would finish after its 48 tokens; here every reply's first token
    # comes before any of the four has finished, so none waits for another's reply.
    options = SamplingOptions(temperature=0.0, max_tokens=48)
    topics = ("rivers", "mountains", "forests", "deserts")
    timeline = Timeline()
    handles = [await send(engine, f"Write a long essay about {t}.", options) for t in topics]
    followed = (timeline.follow(t, h) for t, h in zip(topics, handles, strict=True))
    results = await asyncio.gather(*followed)
    assert all(r.usage.completion_tokens > 1 for r in results)
    assert max(timeline.first_text.values()) < min(timeline.finished.values())


async def test_waiting_replies_are_admitted_round_robin_across_users(
    serial_engine: LlamaEngine, serial_runtime: SteeredRuntime
) -> None:
    options = SamplingOptions(temperature=0.0, max_tokens=4)
    gate = serial_runtime.hold_next()
    before = len(serial_runtime.batches)
    timeline = Timeline()
    first = await send(serial_engine, "Hello!", options, fresh_requester("alice"))
    assert await asyncio.to_thread(serial_runtime.wait_batches, before + 1)
    # Alice queues three more replies, then Dave one: Dave goes next, not fourth.
    names = ["alice-1", "alice-2", "alice-3", "dave-1"]
    handles = [
        await send(serial_engine, f"Say {name}.", options, fresh_requester(name.split("-")[0]))
        for name in names
    ]
    gate.set()
    await asyncio.gather(
        timeline.follow("alice-0", first),
        *(timeline.follow(name, handle) for name, handle in zip(names, handles, strict=True)),
    )
    started = sorted(timeline.first_text, key=timeline.first_text.__getitem__)
    assert started == ["alice-0", "dave-1", "alice-1", "alice-2", "alice-3"]


async def test_another_users_identical_text_reuses_nothing(engine: LlamaEngine) -> None:
    options = SamplingOptions(temperature=0.0, max_tokens=8)
    secret = "My locker code is 4711 and my cat is called Whiskers, remember both."
    unrelated = "Tell me three facts about volcanoes in the Pacific, briefly, please!"
    assert len(secret) == len(unrelated)
    alice = fresh_requester("alice")
    timeline = Timeline()
    own = await timeline.follow("a", await send(engine, secret, options, alice))
    next_turn = [*chat(secret), ChatMessage("assistant", own.text), ChatMessage("user", "Ok.")]
    again = await timeline.follow("a2", await send(engine, next_turn, options, alice))
    same = await timeline.follow("b", await send(engine, secret, options, fresh_requester("bob")))
    other = await timeline.follow(
        "c", await send(engine, unrelated, options, fresh_requester("bob"))
    )
    assert again.usage.cached_prompt_tokens >= own.usage.prompt_tokens  # her own KV
    assert same.usage.cached_prompt_tokens == other.usage.cached_prompt_tokens


async def test_cancelling_one_reply_leaves_the_others_text_unchanged(
    engine: LlamaEngine, runtime: SteeredRuntime
) -> None:
    prompts = {1: "Count from 1 to 50.", 2: "List the planets.", 3: "Name ten colours."}

    async def run(first_max_tokens: int, cancel_first_at: int | None) -> list[GenerationResult]:
        # All three join while the first step is held, so both runs have the same batch
        # shapes: reply 1 leaves after its 5th token, by its token limit or by the cancel.
        handles: list[GenerationHandle] = []
        if cancel_first_at is not None:
            runtime.on_sample = lambda count, seed: (
                handles[0].cancel() if seed == 1 and count == cancel_first_at else None
            )
        gate = runtime.hold_next()
        for seed, text in prompts.items():
            limit = first_max_tokens if seed == 1 else 40
            options = SamplingOptions(temperature=0.0, seed=seed, max_tokens=limit)
            handles.append(await send(engine, text, options))
        gate.set()
        timeline = Timeline()
        return list(
            await asyncio.gather(*(timeline.follow(str(i), h) for i, h in enumerate(handles)))
        )

    control = await run(first_max_tokens=5, cancel_first_at=None)
    cancelled = await run(first_max_tokens=40, cancel_first_at=5)
    assert control[0].finish_reason == "length"
    assert (cancelled[0].finish_reason, cancelled[0].text) == ("cancelled", control[0].text)
    for alone, beside in zip(control[1:], cancelled[1:], strict=True):
        assert beside.text == alone.text
        assert beside.usage.completion_tokens > 5
