"""A scripted in-memory Engine (ports/engine.py) for unit tests.

Like the real engine it has one worker that runs requests one at a time from a bounded
queue, reports queue positions as requests move, stops a cancelled request before its
next piece (or before it starts), and fails one request without stopping the worker.
Tests script what the next requests produce (`engine.script(...)`) and may pace a
request piece by piece (`paced=True`, then `handle.allow(n)`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from llamaql.engine.one_model import OneModel
from llamaql.ports.engine import (
    ChatMessage,
    ContextOverflowError,
    EngineError,
    EngineEvent,
    EngineLoad,
    FinishReason,
    GenerationResult,
    ModelInfo,
    ModelUnavailableError,
    PreparedPrompt,
    QueueFullError,
    QueuePosition,
    Requester,
    SamplingOptions,
    TextPiece,
    UnknownModelError,
    Usage,
)
from llamaql.ports.options import resolve_options

DEFAULT_PIECES = ("Hello", ", ", "world", ".")


@dataclass
class Script:
    """What one request produces: these pieces, then a result or an error."""

    pieces: Sequence[str] = DEFAULT_PIECES
    finish_reason: FinishReason = "stop"
    fail_after: int | None = None
    paced: bool = False


@dataclass
class FakeHandle:
    """A GenerationHandle whose events a worker task pushes into a queue."""

    prompt: PreparedPrompt
    requester: Requester
    script: Script
    background: bool = False
    cancelled: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    emitted: list[str] = field(default_factory=list)
    _queue: asyncio.Queue[EngineEvent | EngineError] = field(default_factory=asyncio.Queue)
    _permits: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def events(self) -> AsyncIterator[EngineEvent]:
        while True:
            event = await self._queue.get()
            if isinstance(event, EngineError):
                raise event
            yield event
            if isinstance(event, GenerationResult):
                return

    def cancel(self) -> None:
        self.cancelled = True
        self._wake.set()

    def allow(self, pieces: int = 1) -> None:
        """Let a paced request produce `pieces` more pieces."""
        self._permits += pieces
        self._wake.set()

    async def _next_permit(self) -> None:
        while self.script.paced and self._permits == 0 and not self.cancelled:
            self._wake.clear()
            await self._wake.wait()
        if self.script.paced and not self.cancelled:
            self._permits -= 1


class FakeEngine(OneModel):
    """Engine protocol over scripts; `prepared` records every prompt it was asked for.

    It knows the models `model_names` (the first is the default); a name in `gone` is
    known but unavailable (its file removed)."""

    def __init__(self, *, queue_size: int = 8, context_tokens: int = 4096) -> None:
        self.queue_size = queue_size
        self.context_tokens = context_tokens
        self.scripts: deque[Script] = deque()
        self.prepared: list[list[ChatMessage]] = []
        self.handles: list[FakeHandle] = []
        self.running: FakeHandle | None = None
        self.prepare_error: EngineError | None = None
        self.forgotten: list[Requester] = []  # forget() calls, in order
        self.replies_expected = 0  # expect_reply() calls
        self.replies_abandoned = 0  # reply_abandoned() calls
        self._waiting: deque[FakeHandle] = deque()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.model_names: list[str] = ["fake"]
        self.gone: set[str] = set()
        self.prepared_models: list[str | None] = []

    def script(
        self,
        *pieces: str,
        finish_reason: FinishReason = "stop",
        fail_after: int | None = None,
        paced: bool = False,
    ) -> Script:
        """Queue the script of a future request (default pieces when none given)."""
        made = Script(pieces or DEFAULT_PIECES, finish_reason, fail_after, paced)
        self.scripts.append(made)
        return made

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="fake-engine-worker")

    async def stop(self) -> None:
        for handle in [*self._waiting, *([self.running] if self.running else [])]:
            handle.cancel()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    def info(self) -> ModelInfo:
        return ModelInfo(
            name="fake",
            path="fake.gguf",
            context_size=self.context_tokens,
            trained_context=self.context_tokens,
            backend="cpu",
            device="CPU",
            gpu_layers=0,
            threads=1,
            has_chat_template=True,
        )

    async def check_model(self, model: str) -> None:
        if model not in self.model_names:
            raise UnknownModelError(f"unknown model {model!r}")

    async def prepare(
        self,
        messages: Sequence[ChatMessage],
        options: SamplingOptions,
        *,
        model: str | None = None,
        owner: str | None = None,
    ) -> PreparedPrompt:
        """One token per word; drops the oldest non-system turns until the prompt fits.
        Options are resolved by the engine's own rules (16 reply tokens by default)."""
        if model in self.gone:
            raise ModelUnavailableError(f"the file of model {model!r} is gone")
        self.prepared_models.append(model)
        resolved = resolve_options(options, context_size=self.context_tokens, default_max_tokens=16)
        self.prepared.append(list(messages))
        if self.prepare_error is not None:
            raise self.prepare_error
        reply_room = resolved.max_tokens
        kept = list(messages)
        dropped = 0

        def size() -> int:
            return sum(len(m.content.split()) + 1 for m in kept) + reply_room

        while size() > self.context_tokens:
            droppable = [i for i, m in enumerate(kept[:-1]) if m.role != "system"]
            if not droppable:
                raise ContextOverflowError(
                    "the latest message does not fit in the context",
                    prompt_tokens=size() - reply_room,
                    reply_tokens=reply_room,
                    dropped_messages=dropped,
                )
            del kept[droppable[0]]
            dropped += 1
        text = "\n".join(f"{m.role}: {m.content}" for m in kept)
        tokens = tuple(range(size() - reply_room))
        return PreparedPrompt(
            text=text,
            tokens=tokens,
            dropped_messages=dropped,
            options=resolved,
            model=model or self.model_names[0],
        )

    def has_room(self) -> bool:
        return len(self._waiting) < self.queue_size

    def load(self) -> EngineLoad:
        return EngineLoad(waiting=len(self._waiting), active=int(self.running is not None))

    def expect_reply(self) -> None:
        self.replies_expected += 1

    def reply_abandoned(self) -> None:
        self.replies_abandoned += 1

    def forget(self, requester: Requester) -> None:
        self.forgotten.append(requester)

    def submit(
        self, prompt: PreparedPrompt, requester: Requester, *, background: bool = False
    ) -> FakeHandle:
        if len(self._waiting) >= self.queue_size:
            raise QueueFullError(f"the request queue is full ({self.queue_size} waiting)")
        script = self.scripts.popleft() if self.scripts else Script()
        handle = FakeHandle(
            prompt=prompt, requester=requester, script=script, background=background
        )
        self.handles.append(handle)
        ahead = len(self._waiting) + (self.running is not None)
        handle._queue.put_nowait(QueuePosition(ahead))
        self._waiting.append(handle)
        self._wake.set()
        return handle

    async def _work(self) -> None:
        while True:
            while not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            handle = self._waiting.popleft()
            # Like the real scheduler: the running request counts as one ahead.
            handle._queue.put_nowait(QueuePosition(0))
            for index, waiting in enumerate(self._waiting):
                waiting._queue.put_nowait(QueuePosition(index + 1))
            self.running = handle
            try:
                await self._run(handle)
            finally:
                self.running = None
                handle.finished.set()

    async def _run(self, handle: FakeHandle) -> None:
        script = handle.script
        if not handle.cancelled:
            handle.started.set()
        for index, piece in enumerate(script.pieces):
            await handle._next_permit()
            if handle.cancelled:
                break
            if script.fail_after is not None and index >= script.fail_after:
                handle._queue.put_nowait(EngineError("fake failure inside the model"))
                return
            handle.emitted.append(piece)
            handle._queue.put_nowait(TextPiece(piece))
            await asyncio.sleep(0)
        if script.fail_after is not None and script.fail_after >= len(script.pieces):
            handle._queue.put_nowait(EngineError("fake failure inside the model"))
            return
        finish: FinishReason = "cancelled" if handle.cancelled else script.finish_reason
        handle._queue.put_nowait(
            GenerationResult(
                text="".join(handle.emitted),
                finish_reason=finish,
                usage=Usage(
                    prompt_tokens=len(handle.prompt.tokens),
                    completion_tokens=len(handle.emitted),
                    generation_ms=1.0,
                    tokens_per_second=float(len(handle.emitted)) * 1000.0,
                ),
                dropped_messages=handle.prompt.dropped_messages,
            )
        )
