"""`python -m bench.titles_engine [ROUNDS]`: the titles benchmark's question asked of the
engine alone, without the server: 4 replies submitted at once, either while a title
(a background request) decodes, after `expect_reply` as a send does (titles on), or on
an idle engine (titles off); sides alternate, KV files off, the default model. Prints
the slowest first token of each burst, in ms, and the medians. It tells whether a gap in
`python -m bench titles` lies in the engine or in the request path around it.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from llamaql.config import DEFAULT_SYSTEM_PROMPT, load_config
from llamaql.container import shared_start
from llamaql.engine.local.engine import LlamaEngine
from llamaql.ports.engine import (
    ChatMessage,
    GenerationHandle,
    Requester,
    SamplingOptions,
    TextPiece,
)
from llamaql.services.chat.titles import TITLE_INSTRUCTION, TITLE_OPTIONS

TITLE_RUN_S = 0.08  # how long the title decodes before the burst
STORY = "Once upon a time a fox lived in a forest by the sea. " * 12


async def _first_token_s(handle: GenerationHandle, began: float) -> float:
    first: float | None = None
    async for event in handle.events():
        if first is None and isinstance(event, TextPiece):
            first = time.perf_counter() - began
    return first if first is not None else float("nan")


async def _burst(engine: LlamaEngine, tag: str, titles: bool) -> float:
    title: GenerationHandle | None = None
    if titles:
        exchange = f"User: Tell me a story about a fox.\n\nAssistant: {STORY}"
        messages = [ChatMessage("system", TITLE_INSTRUCTION), ChatMessage("user", exchange)]
        prompt = await engine.prepare(messages, TITLE_OPTIONS)
        title = engine.submit(prompt, Requester("titles", tag), background=True)
    await asyncio.sleep(TITLE_RUN_S)
    options = SamplingOptions(temperature=0.0, max_tokens=48)
    prompts = [
        await engine.prepare(
            [
                ChatMessage("system", DEFAULT_SYSTEM_PROMPT),
                ChatMessage("user", f"Write a long story number {tag}-{i} about a robot."),
            ],
            options,
        )
        for i in range(4)
    ]
    if titles:
        engine.expect_reply()
    began = time.perf_counter()
    handles = [
        engine.submit(p, Requester(f"user-{i}", f"{tag}-{i}")) for i, p in enumerate(prompts)
    ]
    slowest = max(await asyncio.gather(*(_first_token_s(h, began) for h in handles)))
    if title is not None:
        async for _ in title.events():
            pass
    return slowest * 1000.0


async def main(rounds: int) -> None:
    config = load_config(parallel=4, context_size=2048, kv_disk_mb=0)
    engine = LlamaEngine(config.engine, shared_start=shared_start(config.chat))
    await engine.start()
    try:
        ms: dict[str, list[float]] = {"on": [], "off": []}
        for index in range(rounds):
            for side in ("on", "off") if index % 2 == 0 else ("off", "on"):
                ms[side].append(await _burst(engine, f"{side}{index}", titles=side == "on"))
    finally:
        await engine.stop()
    for side, values in ms.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(
            f"titles {side}: slowest first token ms {shown}; median {statistics.median(values):.0f}"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 6))
