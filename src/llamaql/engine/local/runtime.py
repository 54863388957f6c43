"""The native seam: the few llama.cpp operations the batch scheduler drives.

`llama_runtime.LlamaRuntime` implements it over llama.cpp's low-level API; unit tests
implement it in Python, so scheduling, admission and KV reuse are tested without a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from llamaql.ports.engine import ResolvedOptions


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """How to load the model; defaults already resolved from the settings."""

    model_path: Path
    context_size: int  # per sequence: the most one conversation may use
    sequences: int  # replies decoded together (LLAMAQL_PARALLEL)
    gpu_layers: int  # -1: all
    threads: int
    batch_size: int
    use_extra_bufts: bool


@dataclass(frozen=True, slots=True)
class RuntimeFacts:
    """What the loaded runtime reports about itself, for ModelInfo and the start-up log."""

    context_size: int  # per sequence
    sequences: int
    batch_size: int  # tokens one decode takes at most
    backend: Literal["cpu", "vulkan"]
    device: str
    gpu_layers: int
    threads: int
    kv_bytes: int  # KV memory of all sequences together
    # What a saved sequence state depends on besides the model (KV files keep states of
    # this format only): the library version and the context's KV parameters.
    state_format: str = ""


@dataclass(frozen=True, slots=True)
class BatchPart:
    """Consecutive tokens of one sequence in a batch, starting at position `pos`; logits
    are computed for the last one only when `wants_logits`."""

    seq: int
    pos: int
    tokens: Sequence[int]
    wants_logits: bool


class Sampler(Protocol):
    """Per-request sampling state (seeded RNG, repetition history)."""

    def sample(self, index: int) -> int:
        """Sample (and accept) a token from the logits of batch row `index` of the latest
        decode."""
        ...

    def close(self) -> None: ...


class Vocabulary(Protocol):
    """A model's vocabulary alone (no weights): what preparing a prompt needs."""

    def tokenize(self, text: str, special: bool = True, first: bool = True) -> list[int]: ...

    def close(self) -> None: ...


class ModelRuntime(Protocol):
    """A loaded model and one context holding `facts.sequences` sequences.

    `tokenize`, `token_bytes` and `is_eog` read only the vocabulary and may be called from
    any thread; everything else belongs to the scheduler's thread.
    """

    facts: RuntimeFacts

    def tokenize(self, text: str, special: bool = True, first: bool = True) -> list[int]:
        """Tokens of `text`; `special` parses special-token text as control tokens, and
        only `first` text may get the model's BOS."""
        ...

    def token_bytes(self, token: int) -> bytes: ...

    def is_eog(self, token: int) -> bool: ...

    def decode(self, parts: Sequence[BatchPart]) -> int:
        """Evaluate one batch (parts laid out in order); 0 on success, else llama.cpp's
        status, after which the sequences hold what they held before the call."""
        ...

    def truncate(self, seq: int, keep: int) -> bool:
        """Drop a sequence's KV from position `keep` on (0: all); False when it cannot."""
        ...

    def save(self, seq: int) -> bytearray | None:
        """A host copy of a sequence's KV state; None when llama.cpp fails."""
        ...

    def restore(self, seq: int, state: bytearray) -> bool:
        """Replace a sequence's KV with a saved state; on failure it is left empty."""
        ...

    def new_sampler(self, options: ResolvedOptions) -> Sampler: ...

    def busy(self) -> None:
        """Replies are live here (the scheduler admitted them, its first step may come
        after a gather): it counts as decoding for the threads it shares (core_share.py)."""
        ...

    def idle(self) -> None:
        """No reply is live here now (the scheduler is about to wait): threads shared with
        other contexts go to them (core_share.py)."""
        ...

    def close(self) -> None: ...
