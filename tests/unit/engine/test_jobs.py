"""Job's hand-off to the event loop: text coalesced into one frame per interval."""

from __future__ import annotations

import asyncio
import itertools
import threading

import uvloop

from llamaql.engine.jobs import Job
from llamaql.ports.engine import (
    EngineEvent,
    GenerationResult,
    PreparedPrompt,
    Requester,
    ResolvedOptions,
    TextPiece,
)

OPTIONS = ResolvedOptions(
    temperature=0.0,
    top_p=1.0,
    top_k=0,
    min_p=0.0,
    repeat_penalty=1.0,
    seed=None,
    max_tokens=8,
    stop=(),
)
PROMPT = PreparedPrompt(text="x", tokens=(1,), dropped_messages=0, options=OPTIONS)


def job(interval: float) -> Job:
    return Job(PROMPT, Requester("u", "c"), asyncio.get_running_loop(), stream_interval=interval)


async def all_events(handle: Job) -> list[EngineEvent]:
    return await asyncio.wait_for(_collect(handle), 10.0)


async def _collect(handle: Job) -> list[EngineEvent]:
    return [event async for event in handle.events()]


def produce(handle: Job, pieces: list[str], *, pause: float = 0.0) -> threading.Thread:
    """Post pieces from another thread, as the scheduler does, then finish."""

    def run() -> None:
        for piece in pieces:
            handle.post_text(piece)
            if pause:
                threading.Event().wait(pause)
        handle.finish(GenerationResult(text="".join(pieces), finish_reason="stop"))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def test_a_long_interval_sends_the_first_piece_then_the_rest_together() -> None:
    handle = job(interval=60.0)
    pieces = [f"t{i} " for i in range(200)]
    thread = produce(handle, pieces, pause=0.0005)
    events = await all_events(handle)
    thread.join()
    texts = [event.text for event in events if isinstance(event, TextPiece)]
    assert "".join(texts) == "".join(pieces)
    assert texts[0].startswith("t0 ")
    assert len(texts) == 2  # the first at once; everything else waited, then came with the end
    assert isinstance(events[-1], GenerationResult)


async def test_no_interval_still_never_splits_or_reorders_text() -> None:
    handle = job(interval=0.0)
    pieces = [chr(0x4E00 + i) for i in range(300)]
    thread = produce(handle, pieces)
    events = await all_events(handle)
    thread.join()
    texts = [event.text for event in events if isinstance(event, TextPiece)]
    assert "".join(texts) == "".join(pieces)
    assert 1 <= len(texts) <= len(pieces)


async def test_frames_are_at_most_one_per_interval() -> None:
    handle = job(interval=0.05)
    loop = asyncio.get_running_loop()
    began = loop.time()
    thread = produce(handle, ["a"] * 100, pause=0.003)
    events = await all_events(handle)
    elapsed = loop.time() - began
    thread.join()
    texts = [event.text for event in events if isinstance(event, TextPiece)]
    assert "".join(texts) == "a" * 100
    # The first frame, one per full interval after it, and the rest with the end.
    assert len(texts) <= 2 + int(elapsed / 0.05)
    assert len(texts) < 100


async def test_a_slow_stream_waits_for_a_second_piece_or_twice_the_interval() -> None:
    interval = 0.05
    handle = job(interval=interval)
    loop = asyncio.get_running_loop()
    thread = produce(handle, ["a"] * 30, pause=0.03)  # ~33 pieces a second: < 2 per 50 ms
    frames: list[tuple[float, str]] = []

    async def follow() -> None:
        async for event in handle.events():
            if isinstance(event, TextPiece):
                frames.append((loop.time(), event.text))

    await asyncio.wait_for(follow(), 10.0)
    thread.join()
    assert "".join(text for _, text in frames) == "a" * 30
    assert frames[0][1] == "a"  # the first piece at once
    # Every later frame but the last (the end's) carries two pieces or more, unless twice
    # the interval passed without a second one.
    for (before, _), (at, text) in itertools.pairwise(frames[:-1]):
        assert len(text) >= 2 or at - before >= 2 * interval - 0.005, (at - before, text)
    assert len(frames) <= 2 + 30 // 2


def test_waiting_for_a_frame_does_not_spin_uvloop() -> None:
    """uvloop (what `llamaql serve` runs on) keeps time in whole milliseconds: a frame
    due in under one must not re-arm a timer that fires with the clock unchanged."""

    async def run() -> int:
        handle = job(interval=0.02)
        checks = 0
        schedule = handle._schedule_flush

        def counted() -> None:
            nonlocal checks
            checks += 1
            schedule()

        handle._schedule_flush = counted  # type: ignore[method-assign]
        thread = produce(handle, ["a"] * 60, pause=0.004)  # 2-3 frames' worth per 20 ms
        events = await all_events(handle)
        thread.join()
        assert "".join(e.text for e in events if isinstance(e, TextPiece)) == "a" * 60
        return checks

    # About a frame per 20 ms over ~0.25 s, so ~13 frames: a spin costs hundreds of
    # checks per frame, a timer that waits at most two.
    assert uvloop.run(run()) < 60
