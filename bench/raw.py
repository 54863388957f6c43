"""The raw side of the stream benchmark: llama.cpp through llama-cpp-python in this
process, loaded by the engine's own code (`resolve_load_config` + `LlamaRuntime`) so threads,
context, batch size, GPU layers and buffer types cannot drift from the server's, and
reusing the longest cached token prefix exactly as the engine's context does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Self, TypeVar

from llamaql.config import Config
from llamaql.container import shared_start
from llamaql.engine.local.encoding import PromptEncoder
from llamaql.engine.local.engine import shared_prefix
from llamaql.engine.local.llama_runtime import LlamaRuntime
from llamaql.engine.local.loading import resolve_load_config
from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.engine.local.parking import common_prefix
from llamaql.engine.local.runtime import BatchPart, LoadConfig
from llamaql.engine.local.templates import ChatTemplate, load_chat_template
from llamaql.ports.engine import ChatMessage, SamplingOptions
from llamaql.ports.options import resolve_options

T = TypeVar("T")


@dataclass(slots=True)
class RawTiming:
    """One raw generation; times are `time.perf_counter()` seconds."""

    started: float
    prompt_tokens: int
    cached_prompt_tokens: int
    token_times: list[float] = field(default_factory=list)
    text: bytes = b""

    @property
    def completion_tokens(self) -> int:
        return len(self.token_times)

    @property
    def ttft_s(self) -> float:
        return self.token_times[0] - self.started if self.token_times else float("nan")

    def decode_tps(self) -> float | None:
        if len(self.token_times) < 2:
            return None
        elapsed = self.token_times[-1] - self.token_times[0]
        return (len(self.token_times) - 1) / elapsed if elapsed > 0 else None


class RawModel:
    """The engine's own runtime (LlamaRuntime built from resolve_load_config), driven in a tight
    loop with no queue, thread hand-off, event loop, GraphQL, WebSocket or database."""

    def __init__(self, runtime: LlamaRuntime, template: ChatTemplate, config: LoadConfig) -> None:
        self.runtime = runtime
        self.template = template
        self.config = config
        self._held: list[int] = []  # what sequence 0 holds, as the engine's slots track it

    @classmethod
    def load(cls, settings: Config) -> Self:
        meta = read_gguf_metadata(settings.engine.model_path)
        template = load_chat_template(
            meta.chat_template,
            bos_token=meta.bos_token,
            eos_token=meta.eos_token,
            model_name=meta.name,
        )
        config = replace(resolve_load_config(settings.engine, meta), sequences=1)
        return cls(LlamaRuntime(config), template, config)

    def describe(self) -> dict[str, Any]:
        facts = self.runtime.facts
        return {
            "context_size": facts.context_size,
            "threads": facts.threads,
            "batch_size": self.config.batch_size,
            "gpu_layers": facts.gpu_layers,
            "backend": facts.backend,
            "device": facts.device,
            "use_extra_bufts": self.config.use_extra_bufts,
        }

    def prompt_tokens(self, system: str, user: str) -> list[int]:
        """Rendered and tokenized as the engine's prepare() does for a short history."""
        messages = [ChatMessage("system", system), ChatMessage("user", user)]
        return PromptEncoder(self.template, self.runtime.tokenize).encode(messages)[1]

    def shared_prefix_tokens(self, settings: Config) -> int:
        """How many prompt tokens the server reuses for a new conversation: the prompt
        start every conversation with the default system prompt shares (engine.shared_prefix)."""
        encoder = PromptEncoder(self.template, self.runtime.tokenize)
        return len(shared_prefix(encoder, shared_start(settings.chat)))

    def generate(
        self, tokens: list[int], max_tokens: int, seed: int, reuse_at_most: int | None = None
    ) -> RawTiming:
        """Greedy decode up to `max_tokens`, stopping early only at end-of-generation,
        reusing at most `reuse_at_most` cached prompt tokens (None: all that match)."""
        runtime = self.runtime
        options = resolve_options(
            SamplingOptions(temperature=0.0, seed=seed, max_tokens=max_tokens),
            context_size=runtime.facts.context_size,
            default_max_tokens=max_tokens,
        )
        started = time.perf_counter()
        cached = min(common_prefix(self._held, tokens), len(tokens) - 1)
        if reuse_at_most is not None:
            cached = min(cached, reuse_at_most)
        runtime.truncate(0, cached)
        del self._held[cached:]
        timing = RawTiming(started, len(tokens), cached)
        pieces: list[bytes] = []
        sampler = runtime.new_sampler(options)
        try:
            row = self._decode(tokens[cached:])
            while len(pieces) < max_tokens:
                token = sampler.sample(row)
                if runtime.is_eog(token):
                    break
                pieces.append(runtime.token_bytes(token))
                timing.token_times.append(time.perf_counter())
                if len(pieces) < max_tokens:
                    row = self._decode([token])
        finally:
            sampler.close()
        timing.text = b"".join(pieces)
        return timing

    def _decode(self, tokens: list[int]) -> int:
        """Evaluate `tokens` in batches on sequence 0; the batch row of the last one."""
        size = self.runtime.facts.batch_size
        for start in range(0, len(tokens), size):
            chunk = tokens[start : start + size]
            part = BatchPart(0, len(self._held), chunk, wants_logits=True)
            status = self.runtime.decode([part])
            if status != 0:
                raise RuntimeError(f"llama_decode failed with status {status}")
            self._held.extend(chunk)
        return len(chunk) - 1

    def close(self) -> None:
        self.runtime.close()


class RawWorker:
    """One dedicated thread owns the raw model, as the engine's worker thread owns its
    context: llama.cpp's OpenMP build keeps a thread team per calling thread, so hopping
    between executor threads would start new teams beside idle ones and skew the figures."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-llama")
        self._model: RawModel | None = None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def model(self) -> RawModel:
        if self._model is None:
            raise RuntimeError("RawWorker.load() first")
        return self._model

    async def load(self, settings: Config) -> RawModel:
        self._model = await self._call(RawModel.load, settings)
        return self._model

    async def generate(
        self, tokens: list[int], max_tokens: int, seed: int, reuse_at_most: int | None = None
    ) -> RawTiming:
        return await self._call(self.model.generate, tokens, max_tokens, seed, reuse_at_most)

    async def close(self) -> None:
        if self._model is not None:
            await self._call(self._model.close)
            self._model = None
        self._executor.shutdown(wait=True)
