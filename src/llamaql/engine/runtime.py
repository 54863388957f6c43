"""The llama-facing interface the worker drives; llama.cpp or a fake implements it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from llamaql.engine.options import ResolvedOptions


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """How to load the model; defaults already resolved from the settings."""

    model_path: Path
    context_size: int
    gpu_layers: int  # -1: all
    threads: int
    batch_size: int
    use_extra_bufts: bool
    prompt_cache_bytes: int  # 0: no snapshots of earlier prompts' KV state


@dataclass(frozen=True, slots=True)
class RuntimeFacts:
    """What the loaded runtime reports about itself, for ModelInfo and the start-up log."""

    context_size: int
    backend: Literal["cpu", "vulkan"]
    device: str
    gpu_layers: int
    threads: int


class Sampler(Protocol):
    """Per-request sampling state (seeded RNG, repetition history)."""

    def sample(self) -> int:
        """The next token from the latest evaluated position's logits."""
        ...

    def close(self) -> None: ...


class ModelRuntime(Protocol):
    """A loaded model and its one context.

    `tokenize`, `token_bytes` and `is_eog` read only the vocabulary and may be called from
    any thread; everything else belongs to the worker thread.
    """

    facts: RuntimeFacts

    def tokenize(self, text: str) -> list[int]: ...

    def token_bytes(self, token: int) -> bytes: ...

    def is_eog(self, token: int) -> bool: ...

    def evaluate(self, tokens: Sequence[int], cancelled: Callable[[], bool]) -> int | None:
        """Make the context hold exactly `tokens`, reusing the longest prefix it already
        holds (or a kept snapshot of an earlier prompt holds); return how many tokens were
        reused rather than evaluated, or None when `cancelled()` turned true between
        batches."""
        ...

    def new_sampler(self, options: ResolvedOptions) -> Sampler: ...

    def append(self, token: int) -> None:
        """Evaluate one generated token so the next one can be sampled."""
        ...

    def reset(self) -> None:
        """Forget the context's contents (after a failure left them unknown)."""
        ...

    def close(self) -> None: ...
