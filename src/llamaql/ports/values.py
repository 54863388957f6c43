"""The shared vocabulary: frozen values that services, the engines and the API pass around.

Each fact is written here once. Repositories turn their rows into these values (no
SQLModel row travels above them), the engines take and give the option, usage and model
values, and the GraphQL layer turns values into its own types. The values are plain
slotted dataclasses, built without validation: a page of rows costs microseconds.
Sampling ranges live here too, so the engine's checks, its error messages and the
schema's descriptions all come from the same numbers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")

# Sampling ranges: what a request or a conversation's defaults may ask for.
TEMPERATURE_MIN, TEMPERATURE_MAX = 0.0, 2.0
TOP_P_MIN, TOP_P_MAX = 0.0, 1.0
MIN_P_MIN, MIN_P_MAX = 0.0, 1.0
TOP_K_MIN, TOP_K_MAX = 0, 1000
TOP_K_OFF = 0
# repeat_penalty must be above its minimum (llama.cpp divides logits by it).
REPEAT_PENALTY_ABOVE, REPEAT_PENALTY_MAX = 0.0, 2.0
REPEAT_PENALTY_OFF = 1.0
SEED_BITS = 32
SEED_MAX = 2**SEED_BITS - 1
SEED_RANDOM = -1  # asks for a random seed
MAX_TOKENS_MIN = 1  # the most is the context size
MAX_STOP_STRINGS = 4
MAX_STOP_CHARS = 64


@dataclass(frozen=True, slots=True)
class SamplingOptions:
    """Sampling asked for (by a request, or as a conversation's defaults); None means not
    set: the engine's default, or the conversation's for a request. Ranges above; the
    engine checks them when it resolves the options."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None

    def overridden_by(self, other: SamplingOptions) -> SamplingOptions:
        """These options, with every option `other` sets taking its place."""
        given = {name: value for name in OPTION_KEYS if (value := getattr(other, name)) is not None}
        return replace(self, **given) if given else self

    def to_dict(self) -> dict[str, Any]:
        """The set options by name (stop as a list): how a conversation stores them."""
        return {
            name: list(value) if name == "stop" else value
            for name in OPTION_KEYS
            if (value := getattr(self, name)) is not None
        }

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> SamplingOptions:
        """The options of `to_dict`'s form (names it does not know are left out)."""
        known = {name: value for name, value in options.items() if name in OPTION_KEYS}
        stop = known.get("stop")
        if stop is not None:
            known["stop"] = tuple(stop)
        return cls(**known)


OPTION_KEYS = tuple(option.name for option in fields(SamplingOptions))
"""The sampling options' names, in order (snake_case; the API spells them camelCase)."""


@dataclass(frozen=True, slots=True)
class ResolvedOptions:
    """Every sampling parameter with a concrete value, checked against the ranges; seed
    None means random. Resolved once per request, by `Engine.prepare`."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    seed: int | None
    max_tokens: int
    stop: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts and timings of one generated reply."""

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_ms: float = 0.0
    generation_ms: float = 0.0
    tokens_per_second: float = 0.0


USAGE_FIELDS = tuple(figure.name for figure in fields(Usage))
"""Usage's figures by name; a stored message has a column of each name."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Facts about the model that answers (or, before it is loaded, its file)."""

    name: str
    path: str
    context_size: int
    trained_context: int
    backend: Literal["cpu", "vulkan", "remote"]
    device: str
    gpu_layers: int
    threads: int
    has_chat_template: bool
    # Which engine answers: llama.cpp in this process, or an OpenAI-compatible server
    # (`engine_server` says which kind: llama-server, vllm, llama-cpp-python, ...).
    engine: Literal["local", "remote"] = "local"
    engine_server: str | None = None


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One model the server can answer with (`models`, `model(name)`): its file's facts,
    the context llamaql gives it, and whether it is loaded and how busy."""

    name: str
    file_size: int
    architecture: str
    parameters: int
    quantization: str
    trained_context: int
    context_size: int
    has_chat_template: bool
    is_default: bool
    loaded: bool
    loading: bool
    live_replies: int  # generating or queued on it now (titles included)
    memory_bytes: int  # weights and KV while loaded (else 0)


class MessageKind(IntEnum):
    """The Rust system's stored message kinds."""

    SYSTEM = 1
    BOT = 2
    USER = 3


class MessageStatus(StrEnum):
    """Where a message stands; only assistant replies are ever GENERATING."""

    COMPLETE = "COMPLETE"
    GENERATING = "GENERATING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


UPDATABLE_FIELDS = frozenset({"title", "system_prompt", "options", "model"})
"""What an owner may change of a conversation; ids, owner and times are not theirs."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """One user's conversation; `options` are its sampling defaults.

    `current_leaf_id` picks the branch of the message tree that is current: the path
    from the root to that message (None while there are no messages).
    """

    id: uuid.UUID
    user_id: uuid.UUID
    title: str | None
    system_prompt: str | None
    current_leaf_id: uuid.UUID | None
    options: SamplingOptions
    created_at: datetime
    updated_at: datetime
    model: str | None = None  # None: the server's default model at each send


@dataclass(frozen=True, slots=True)
class Message:
    """One message; `seq` orders a conversation's messages (oldest first), `parent_id`
    places it in the tree (siblings share it). `kind` is a MessageKind, `status` a
    MessageStatus value; `usage` is None until a reply is saved with its figures."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    seq: int
    parent_id: uuid.UUID | None
    kind: int
    text: str
    status: str
    finish_reason: str | None
    # While GENERATING: the replica producing it and its last heartbeat.
    replica_id: str | None
    heartbeat_at: datetime | None
    usage: Usage | None
    dropped_messages: int | None
    created_at: datetime
    updated_at: datetime
    model: str | None = None  # the model that wrote a reply (None: a user message, or older)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a connection: (cursor, node) pairs in order."""

    edges: Sequence[tuple[str, T]]
    has_next_page: bool
    total_count: int

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1][0] if self.edges else None
