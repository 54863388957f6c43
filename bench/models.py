"""`python -m bench models`: several models on one engine (issue 18), measured on the
engine itself (LocalModels, no server), the default model and a byte-for-byte copy of it
under another name (so both sides decode the same weights at the same speed).

1. Total tok/s with two models busy (N greedy replies each, submitted at once) against
   one model with the same load (2N replies), both models loaded, LLAMAQL_PARALLEL = 2N;
   the sides alternate within each round. Two designs of the two-model side:
   - `shared`: the server's (engine/local/core_share.py): the threads divided among the
     models decoding now, each decoding on its own share at the same time;
   - `turn`: one decode at a time across models (a fair lock), each with every thread,
     the design the server had before this benchmark chose the other.
   The ratio two/one per design is the figure (goal >= 0.9).
2. Load on demand: the time from a request for a model that is not loaded to its first
   token (LLAMAQL_MAX_LOADED_MODELS=1, so each request unloads the other model), against
   the model's load time alone (a bare engine's start).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import Result, usable_cores
from llamaql.config import Config, EngineConfig
from llamaql.engine.local.core_share import CoreShare, SharedCoresRuntime
from llamaql.engine.local.engine import LlamaEngine
from llamaql.engine.local.llama_runtime import LlamaRuntime
from llamaql.engine.local.models import EngineFactory, LocalModels, llama_engine_factory
from llamaql.engine.local.runtime import BatchPart, LoadConfig, ModelRuntime
from llamaql.ports.engine import (
    ChatMessage,
    Engine,
    GenerationResult,
    Requester,
    SamplingOptions,
    TextPiece,
)

COPY = "bench-copy"
PROMPT = "Count from 1 to 1000, one number per line. Batch {tag}."


@dataclass(frozen=True, slots=True)
class ModelsParams:
    replies: int = 2  # N: replies per model on the two-model side (2N on the one-model side)
    max_tokens: int = 128
    rounds: int = 3
    load_rounds: int = 3


SMOKE = ModelsParams(replies=1, max_tokens=8, rounds=1, load_rounds=1)


class _StepTurn:
    """One decode at a time for any threads, first come first served."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next = self._serving = 0

    def __enter__(self) -> None:
        with self._changed:
            ticket, self._next = self._next, self._next + 1
            self._changed.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *_: object) -> None:
        with self._changed:
            self._serving += 1
            self._changed.notify_all()


class _TurnTaking(SharedCoresRuntime):
    """Every thread for each decode, one decode at a time across models."""

    def __init__(self, runtime: LlamaRuntime, cores: CoreShare, turn: _StepTurn) -> None:
        super().__init__(runtime, cores)
        self._turn = turn

    def decode(self, parts: Sequence[BatchPart]) -> int:
        with self._turn:
            return self._runtime.decode(parts)


def _turn_factory() -> EngineFactory:
    turn = _StepTurn()

    def make(config: EngineConfig, cores: CoreShare) -> Engine:
        def runtime(load: LoadConfig) -> ModelRuntime:
            return _TurnTaking(LlamaRuntime(load), cores, turn)

        return LlamaEngine(config, runtime_factory=runtime)

    return make


async def _reply(models: Engine, model: str, tag: str, max_tokens: int) -> tuple[int, float]:
    """One greedy reply: its completion tokens and the seconds to its first token."""
    began = time.perf_counter()
    prompt = await models.prepare(
        [ChatMessage("user", PROMPT.format(tag=tag))],
        SamplingOptions(temperature=0.0, max_tokens=max_tokens),
        model=model,
    )
    handle = models.submit(prompt, Requester("bench", tag))
    first: float | None = None
    tokens = 0
    async for event in handle.events():
        if isinstance(event, TextPiece) and first is None:
            first = time.perf_counter() - began
        elif isinstance(event, GenerationResult):
            tokens = event.usage.completion_tokens
    return tokens, first if first is not None else float("nan")


async def _tok_s(models: Engine, names: Sequence[str], tag: str, max_tokens: int) -> float:
    """Total tok/s of one reply per entry of `names`, all submitted at once."""
    began = time.perf_counter()
    done = await asyncio.gather(
        *(_reply(models, name, f"{tag}-{i}", max_tokens) for i, name in enumerate(names))
    )
    return sum(tokens for tokens, _ in done) / (time.perf_counter() - began)


def _folder(settings: Config, root: Path) -> tuple[Path, str]:
    folder = root / "models"
    folder.mkdir()
    default = Path(shutil.copy(settings.engine.model_path, folder))
    shutil.copy(default, folder / f"{COPY}.gguf")
    return folder, default.stem


def _engine_config(settings: Config, folder: Path, default: str, **changes: object) -> EngineConfig:
    return settings.engine.model_copy(
        update={
            "models_dir": folder,
            "model_path": folder / f"{default}.gguf",
            "model": None,
            "model_idle_seconds": 0.0,
            "kv_disk_mb": 0,
            **changes,
        }
    )


async def _throughput(
    settings: Config, folder: Path, default: str, params: ModelsParams
) -> dict[str, object]:
    n = params.replies
    config = _engine_config(
        settings, folder, default, parallel=2 * n, max_loaded_models=2, queue_size=4 * n
    )
    threads = config.n_threads or usable_cores()
    designs = {"shared": llama_engine_factory(()), "turn": _turn_factory()}
    registries = {name: LocalModels(config, engine_factory=f) for name, f in designs.items()}
    one_side: list[float] = []
    two_side: dict[str, list[float]] = {name: [] for name in designs}
    try:
        for models in registries.values():
            await models.start()
            await _tok_s(models, [COPY], "warm", 4)  # both models loaded before measuring
        for round_no in range(params.rounds):
            sides = ["one", *designs] if round_no % 2 == 0 else [*designs, "one"]
            for side in sides:
                tag = f"r{round_no}-{side}"
                if side == "one":
                    one = [default] * (2 * n)
                    one_side.append(await _tok_s(registries["shared"], one, tag, params.max_tokens))
                else:
                    two = [default, COPY] * n
                    rate = await _tok_s(registries[side], two, tag, params.max_tokens)
                    two_side[side].append(rate)
    finally:
        for models in registries.values():
            await models.stop()
    one_median = statistics.median(one_side)
    figures: dict[str, object] = {"one_model_tok_s": one_side, "threads": threads}
    for name, rates in two_side.items():
        figures[f"two_models_{name}_tok_s"] = rates
        figures[f"ratio_{name}"] = round(statistics.median(rates) / one_median, 3)
    return figures


async def _loading(
    settings: Config, folder: Path, default: str, params: ModelsParams
) -> dict[str, object]:
    config = _engine_config(settings, folder, default, max_loaded_models=1)
    models = LocalModels(config, engine_factory=llama_engine_factory(()))
    to_first_token: list[float] = []
    load_alone: list[float] = []
    await models.start()
    try:
        for round_no in range(params.load_rounds):
            # The copy is not loaded: asking for it unloads the default and loads it.
            _, first = await _reply(models, COPY, f"load-{round_no}", 4)
            to_first_token.append(first)
            await _reply(models, default, f"back-{round_no}", 4)  # and back again
    finally:
        await models.stop()
    for _ in range(params.load_rounds):
        bare = LlamaEngine(config.model_copy(update={"model_path": folder / f"{COPY}.gguf"}))
        began = time.perf_counter()
        await bare.start()
        load_alone.append(time.perf_counter() - began)
        await bare.stop()
    first, load = statistics.median(to_first_token), statistics.median(load_alone)
    return {
        "unloaded_to_first_token_s": [round(s, 3) for s in to_first_token],
        "load_alone_s": [round(s, 3) for s in load_alone],
        "unloaded_to_first_token_median_s": round(first, 3),
        "load_alone_median_s": round(load, 3),
        "first_token_over_load": round(first / load, 3),
    }


async def run(settings: Config, params: ModelsParams) -> Result:
    with tempfile.TemporaryDirectory(prefix="llamaql-bench-models-") as tmp:
        folder, default = _folder(settings, Path(tmp))
        figures = await _throughput(settings, folder, default, params)
        figures |= await _loading(settings, folder, default, params)
    shared, turn = figures["ratio_shared"], figures["ratio_turn"]
    summary = (
        f"models: two models busy vs one ({params.replies}+{params.replies} vs "
        f"{2 * params.replies} replies): total tok/s ratio {shared} with the threads shared "
        f"out (the server's design), {turn} taking turns (goal >= 0.9); unloaded model to "
        "first token "
        f"{figures['unloaded_to_first_token_median_s']} s vs load alone "
        f"{figures['load_alone_median_s']} s"
    )
    return Result("models", asdict(params), figures, summary)
