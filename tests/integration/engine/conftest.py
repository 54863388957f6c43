"""The real default model, loaded once per session, behind a runtime tests can steer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from llamaql.engine.engine import LlamaEngine
from llamaql.engine.llama_runtime import LlamaRuntime, LlamaSampler
from llamaql.engine.options import ResolvedOptions
from llamaql.engine.runtime import LoadConfig
from llamaql.settings import DEFAULT_MODEL_DIR, DEFAULT_MODEL_FILE, load_settings

MODEL = DEFAULT_MODEL_DIR / DEFAULT_MODEL_FILE


class CountingSampler:
    def __init__(self, inner: LlamaSampler, owner: SteeredRuntime) -> None:
        self._inner = inner
        self._owner = owner
        self._count = 0

    def sample(self) -> int:
        token = self._inner.sample()
        self._count += 1
        if self._owner.on_sample is not None:
            self._owner.on_sample(self._count)
        return token

    def close(self) -> None:
        self._inner.close()


class SteeredRuntime(LlamaRuntime):
    """The real runtime plus hooks: hold or fail the next prompt, observe batches/tokens."""

    def __init__(self, config: LoadConfig) -> None:
        super().__init__(config)
        self.evaluated: list[tuple[int, ...]] = []
        self.started = threading.Condition()
        self.held: threading.Event | None = None
        self.fail_next = False
        self.on_batch_check: Callable[[int], None] | None = None
        self.on_sample: Callable[[int], None] | None = None

    def reset_hooks(self) -> None:
        self.held, self.fail_next = None, False
        self.on_batch_check = self.on_sample = None

    def hold_next(self) -> threading.Event:
        self.held = threading.Event()
        return self.held

    def wait_evaluated(self, count: int) -> bool:
        with self.started:
            return self.started.wait_for(lambda: len(self.evaluated) >= count, 30)

    def evaluate(self, tokens: Sequence[int], cancelled: Callable[[], bool]) -> int | None:
        with self.started:
            self.evaluated.append(tuple(tokens))
            self.started.notify_all()
        gate, self.held = self.held, None
        if gate is not None:
            while not gate.wait(0.01):
                if cancelled():
                    return None
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("injected failure")
        checks = 0

        def checked() -> bool:
            nonlocal checks
            checks += 1
            if self.on_batch_check is not None:
                self.on_batch_check(checks)
            return cancelled()

        return super().evaluate(tokens, checked)

    def new_sampler(self, options: ResolvedOptions) -> CountingSampler:  # type: ignore[override]
        return CountingSampler(super().new_sampler(options), self)


def _engine(**overrides: object) -> Iterator[tuple[LlamaEngine, SteeredRuntime]]:
    if not Path(MODEL).is_file():
        pytest.skip(f"{MODEL} is missing: run `make model`")
    runtimes: list[SteeredRuntime] = []

    def factory(config: LoadConfig) -> SteeredRuntime:
        runtimes.append(SteeredRuntime(config))
        return runtimes[0]

    engine = LlamaEngine(load_settings(model_path=MODEL, **overrides), runtime_factory=factory)
    asyncio.run(engine.start())
    yield engine, runtimes[0]
    asyncio.run(engine.stop())


@pytest.fixture(scope="session")
def _model_engine() -> Iterator[tuple[LlamaEngine, SteeredRuntime]]:
    # Small batches so that prompt evaluation has several cancel points.
    yield from _engine(n_batch=64, queue_size=2)


@pytest.fixture(scope="session")
def small_engine() -> Iterator[LlamaEngine]:
    """The same model with a 256-token context, for truncation and overflow."""
    for engine, _runtime in _engine(context_size=256):
        yield engine


@pytest.fixture(scope="session")
def uncached_engine() -> Iterator[LlamaEngine]:
    """The model engine's settings without the prompt cache. The same batch size matters:
    llama.cpp's logits depend slightly on how a prompt is split into batches."""
    for engine, _runtime in _engine(prompt_cache_mb=0, n_batch=64):
        yield engine


@pytest.fixture
def engine(_model_engine: tuple[LlamaEngine, SteeredRuntime]) -> Iterator[LlamaEngine]:
    yield _model_engine[0]
    _model_engine[1].reset_hooks()


@pytest.fixture
def runtime(_model_engine: tuple[LlamaEngine, SteeredRuntime]) -> SteeredRuntime:
    return _model_engine[1]
