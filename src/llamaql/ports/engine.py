"""The engine's contract: what callers submit and the events they get back.

The engine knows nothing of GraphQL or SQL. `sendMessage` (services/chat) drives it
through the `Engine` protocol; tests drive a fake through the same protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

# The option, usage and model values are the shared vocabulary (ports/values.py); named here
# too, for the engine's modules.
from llamaql.ports.values import ModelInfo as ModelInfo
from llamaql.ports.values import ModelStatus as ModelStatus
from llamaql.ports.values import ResolvedOptions as ResolvedOptions
from llamaql.ports.values import SamplingOptions as SamplingOptions
from llamaql.ports.values import Usage as Usage

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Requester:
    """Who a request is for. The engine admits waiting requests round-robin by `user` and
    reuses KV state only for the same `(user, conversation)`; both are opaque to it."""

    user: str
    conversation: str


@dataclass(frozen=True, slots=True)
class PreparedPrompt:
    """A conversation rendered with the chat template and fitted to the context, with the
    options it will be generated with (`options.max_tokens` is the room the fit left)."""

    text: str
    tokens: tuple[int, ...]
    dropped_messages: int
    options: ResolvedOptions
    # The fitted messages, for an engine whose server renders the template itself.
    messages: tuple[ChatMessage, ...] = ()
    # The model it was prepared for (its template and tokens); None: the engine's one.
    model: str | None = None


@dataclass(frozen=True, slots=True)
class QueuePosition:
    """Where a request stands: 0 once it is generating; n >= 1 while it waits, as the n-th
    to be admitted when a sequence frees up."""

    position: int
    # True while the request waits for its model to load.
    loading: bool = False


@dataclass(frozen=True, slots=True)
class TextPiece:
    """Valid UTF-8 text, never part of a stop string."""

    text: str


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """The one final event of a request that was not failed."""

    text: str
    finish_reason: FinishReason
    usage: Usage = field(default_factory=Usage)
    dropped_messages: int = 0


EngineEvent = QueuePosition | TextPiece | GenerationResult


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """How busy the engine is right now: replies waiting for a sequence (title requests
    not counted) and replies being decoded (titles included); `reachable` is False while
    a remote engine's server does not answer (an in-process engine always is)."""

    waiting: int
    active: int
    reachable: bool = True


class EngineError(Exception):
    """A request failed inside the engine; the engine keeps serving others."""

    code = "ENGINE_ERROR"


class EngineUnavailableError(EngineError):
    """The engine could not be reached or answered with a server error; nothing was
    generated, and trying again later may work."""


class QueueFullError(EngineError):
    """The request queue is full; try again later."""

    code = "QUEUE_FULL"


class ContextOverflowError(EngineError):
    """The latest message does not fit in the context even alone; the prompt it would
    need, the reply room kept, and the messages already dropped."""

    code = "CONTEXT_OVERFLOW"

    def __init__(
        self,
        message: str,
        *,
        prompt_tokens: int = 0,
        reply_tokens: int = 0,
        dropped_messages: int = 0,
    ) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.reply_tokens = reply_tokens
        self.dropped_messages = dropped_messages


class InvalidOptionsError(EngineError):
    """A sampling option is out of range; the message names it and the allowed range."""

    code = "BAD_USER_INPUT"


class TemplateError(EngineError):
    """The chat template failed to render these messages."""


class ModelFileError(EngineError):
    """The model file is missing or is not a readable GGUF file."""


class UnknownModelError(EngineError):
    """No model of that name; nothing was done."""

    code = "BAD_USER_INPUT"


class ModelUnavailableError(EngineError):
    """The model cannot answer: its file is gone, it can never fit in the memory limit,
    or it failed to load; the message says which. Not retryable."""

    code = "MODEL_UNAVAILABLE"


class GenerationHandle(Protocol):
    """One submitted request: iterate its events, or cancel it."""

    def events(self) -> AsyncIterator[EngineEvent]:
        """QueuePosition*, TextPiece*, then one GenerationResult; raises EngineError
        (after any pieces) when the request fails."""
        ...

    def cancel(self) -> None:
        """Stop within one decode step (or before it starts); the result's finish reason is
        `cancelled` and its text what was produced so far. Idempotent, thread-safe."""
        ...


class Engine(Protocol):
    """The inference engine: llama.cpp in process (engine.LlamaEngine), an OpenAI-compatible
    server (remote.engine.RemoteEngine), or a fake in unit tests."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def info(self) -> ModelInfo:
        """The default model's facts."""
        ...

    async def model_info(self, model: str | None) -> ModelInfo:
        """A model's facts (None: the default), loaded or not; raises UnknownModelError,
        ModelUnavailableError."""
        ...

    async def models(self) -> list[ModelStatus]:
        """Every model this engine can answer with, by name."""
        ...

    async def check_model(self, model: str) -> None:
        """Raise UnknownModelError unless `model` names one of `models()`."""
        ...

    def loaded_models(self) -> tuple[str, ...]:
        """The models loaded now; cheap, never blocks."""
        ...

    async def prepare(
        self,
        messages: Sequence[ChatMessage],
        options: SamplingOptions,
        *,
        model: str | None = None,
        owner: str | None = None,
    ) -> PreparedPrompt:
        """Resolve the options, render and budget a prompt for `model` (None: the
        default) off the event loop; raises ContextOverflowError, TemplateError,
        InvalidOptionsError, ModelUnavailableError. `owner` (a user id) scopes what the
        engine may keep of the messages to speed up that user's next prompt (None:
        nothing of them is kept): nothing one user sent is reused for another."""
        ...

    def has_room(self) -> bool:
        """Whether submit() would be accepted right now."""
        ...

    def load(self) -> EngineLoad:
        """Waiting and active replies now; cheap, never blocks, callable from any thread."""
        ...

    def submit(
        self, prompt: PreparedPrompt, requester: Requester, *, background: bool = False
    ) -> GenerationHandle:
        """Queue a request without blocking; raises QueueFullError at once when full.

        A `background` request (a title, say) starts only when no other request waits and
        a sequence is free, is never told a queue position, and leaves no KV behind."""
        ...

    def expect_reply(self) -> None:
        """A reply request has begun (its database work comes first): background work
        steps aside now, so it does not take the CPU from that request or its reply.
        Never blocks; callable from the event loop."""
        ...

    def reply_abandoned(self) -> None:
        """A reply request announced by `expect_reply` was refused before its submit: an
        idle engine stops waiting for it to join its first step. Never blocks."""
        ...

    def forget(self, requester: Requester) -> None:
        """Drop every KV state kept for `requester` (a deleted conversation): in memory,
        in a sequence and on disk. Never blocks; callable from the event loop."""
        ...
