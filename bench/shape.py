"""Benchmark 6, shape: what the order and placement of sequences in one decode step cost.

llama.cpp evaluates a batch over separate KV streams (LLAMAQL_PARALLEL sequences, not
unified) in micro-batches of consecutive sequence ids: every break in the ids is one more
graph evaluation in the same step. The engine therefore lists a step's sequences in
increasing order and places a new conversation where it keeps the busy sequences in one
run. This benchmark shows why, on the engine's own runtime (`resolve_load_config` +
`LlamaRuntime`, no server): one-token decode steps for the same number of sequences in
one run against several runs, and all sequences sorted against rotated (what admission
order gave before: 1..N-1 then 0). Rounds alternate the cases so drift falls on all.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, dataclass

from bench.common import Result
from llamaql.config import Config
from llamaql.engine.local.llama_runtime import LlamaRuntime
from llamaql.engine.local.loading import resolve_load_config
from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.engine.local.runtime import BatchPart

PROMPT = "Write a very long story about a dragon who learns to bake bread."


@dataclass(frozen=True, slots=True)
class ShapeParams:
    sequences: int = 8
    steps: int = 60  # one-token steps per case and round
    rounds: int = 4


SMOKE = ShapeParams(sequences=4, steps=2, rounds=1)


def cases(sequences: int) -> dict[str, list[int]]:
    half = sequences // 2
    return {
        f"{half} in one run": list(range(half)),
        f"{half} in {half} runs": list(range(0, 2 * half, 2)),
        f"{sequences} sorted": list(range(sequences)),
        f"{sequences} rotated": [*range(1, sequences), 0],
    }


def _measure(params: ShapeParams, settings: Config) -> dict[str, list[float]]:
    engine = settings.engine.model_copy(update={"parallel": params.sequences})
    runtime = LlamaRuntime(resolve_load_config(engine, read_gguf_metadata(engine.model_path)))
    try:
        prompt = tuple(runtime.tokenize(PROMPT))
        for seq in range(params.sequences):
            if runtime.decode([BatchPart(seq, 0, prompt, wants_logits=True)]) != 0:
                raise RuntimeError(f"could not evaluate the prompt in sequence {seq}")
        positions = dict.fromkeys(range(params.sequences), len(prompt))
        shapes = cases(params.sequences)
        times: dict[str, list[float]] = {name: [] for name in shapes}
        for round_ in range(params.rounds):
            order = list(shapes) if round_ % 2 == 0 else list(reversed(shapes))
            for name in order:
                seqs = shapes[name]
                started = time.perf_counter()
                for _ in range(params.steps):
                    parts = [BatchPart(q, positions[q], (42,), wants_logits=True) for q in seqs]
                    if runtime.decode(parts) != 0:
                        raise RuntimeError(f"a decode step failed ({name})")
                    for q in seqs:
                        positions[q] += 1
                times[name].append((time.perf_counter() - started) / params.steps * 1000)
        return times
    finally:
        runtime.close()


async def run(settings: Config, params: ShapeParams) -> Result:
    result = Result("batch_shape", params={**asdict(params), "prompt": PROMPT})
    times = await asyncio.to_thread(_measure, params, settings)
    medians = {name: round(statistics.median(values), 2) for name, values in times.items()}
    one, split, ordered, rotated = medians.values()
    names = list(medians)
    result.figures = {
        "step_ms_median": medians,
        "step_ms_by_round": {name: [round(v, 2) for v in values] for name, values in times.items()},
        "split_over_one_run": round(split / one, 3),
        "rotated_over_sorted": round(rotated / ordered, 3),
    }
    result.summary = (
        f"batch shape: {names[1]} {split / one:.2f}x the step time of {names[0]}; "
        f"{names[3]} {rotated / ordered:.2f}x {names[2]} (medians of {params.rounds} rounds)"
    )
    result.details = "\n".join(
        ["| sequences in the step | ms per step (median) |", "|---|---|"]
        + [f"| {name}: {shapes} | {medians[name]} |" for name, shapes in _shapes(params).items()]
    )
    return result


def _shapes(params: ShapeParams) -> dict[str, str]:
    return {name: ",".join(map(str, seqs)) for name, seqs in cases(params.sequences).items()}
