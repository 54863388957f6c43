"""`python -m bench.lanes [--replies N] [--rounds R] [--max-tokens T]`: decode lanes
against one context, on the engine alone (no server). Two `LlamaEngine`s of the default
model are loaded side by side, `LLAMAQL_PARALLEL=N`, KV files off: one with
`LLAMAQL_DECODE_LANES=1`, one with 2. Each round sends N greedy replies at once (new
conversations, the default system prompt, prompts differing by their number) to each
engine in turn, alternating which goes first. Prints each side's total tok/s (all
completion tokens over the burst's wall time) and slowest first token per round, their
medians and the lanes/one ratio of the medians, as JSON. It tells what lanes change in the
engine itself; `python -m bench peer` measures the server against llama-server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from llamaql.config import DEFAULT_SYSTEM_PROMPT, load_config
from llamaql.container import shared_start
from llamaql.engine.local.engine import LlamaEngine
from llamaql.ports.engine import (
    ChatMessage,
    GenerationHandle,
    GenerationResult,
    Requester,
    SamplingOptions,
    TextPiece,
)


async def _burst(engine: LlamaEngine, tag: str, replies: int, max_tokens: int) -> dict[str, float]:
    options = SamplingOptions(temperature=0.0, max_tokens=max_tokens)
    prompts = [
        await engine.prepare(
            [
                ChatMessage("system", DEFAULT_SYSTEM_PROMPT),
                ChatMessage("user", f"Write a long story number {tag}-{i} about a robot."),
            ],
            options,
        )
        for i in range(replies)
    ]
    began = time.perf_counter()
    handles = [
        engine.submit(p, Requester(f"user-{tag}-{i}", f"{tag}-{i}")) for i, p in enumerate(prompts)
    ]

    async def one(handle: GenerationHandle) -> tuple[float, int]:
        first, tokens = float("nan"), 0
        async for event in handle.events():
            if first != first and isinstance(event, TextPiece):  # nan: none yet
                first = time.perf_counter() - began
            if isinstance(event, GenerationResult):
                tokens = event.usage.completion_tokens
        return first, tokens

    done = await asyncio.gather(*(one(h) for h in handles))
    wall = time.perf_counter() - began
    return {
        "tok_s": sum(tokens for _, tokens in done) / wall,
        "slowest_first_token_ms": max(first for first, _ in done) * 1000.0,
    }


async def run(replies: int, rounds: int, max_tokens: int) -> dict[str, object]:
    engines: dict[int, LlamaEngine] = {}
    for lanes in (1, 2):
        config = load_config(parallel=replies, context_size=1024, kv_disk_mb=0, decode_lanes=lanes)
        engine = LlamaEngine(config.engine, shared_start=shared_start(config.chat))
        await engine.start()
        engines[lanes] = engine
    measured: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    try:
        for index in range(rounds):
            for lanes in (1, 2) if index % 2 == 0 else (2, 1):
                tag = f"l{lanes}r{index}"
                measured[lanes].append(await _burst(engines[lanes], tag, replies, max_tokens))
    finally:
        for engine in engines.values():
            await engine.stop()

    def median(lanes: int, key: str) -> float:
        return round(statistics.median(r[key] for r in measured[lanes]), 1)

    return {
        "replies": replies,
        "rounds": {str(k): v for k, v in measured.items()},
        "tok_s_median": {"one": median(1, "tok_s"), "lanes": median(2, "tok_s")},
        "slowest_first_token_ms_median": {
            "one": median(1, "slowest_first_token_ms"),
            "lanes": median(2, "slowest_first_token_ms"),
        },
        "ratio_tok_s": round(median(2, "tok_s") / median(1, "tok_s"), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lanes", description=__doc__)
    parser.add_argument("--replies", type=int, default=8, help="replies at once (default 8)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per side (default 4)")
    parser.add_argument("--max-tokens", type=int, default=96, help="tokens per reply")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.replies, args.rounds, args.max_tokens)), indent=1))


if __name__ == "__main__":
    main()
