"""The real default model, loaded once per session, behind a runtime tests can steer."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from tests.eventually import eventually_blocking

from llamaql.config import DEFAULT_MODEL_DIR, DEFAULT_MODEL_FILE, load_config
from llamaql.container import shared_start
from llamaql.engine.local.engine import LlamaEngine
from llamaql.engine.local.llama_runtime import LlamaRuntime
from llamaql.engine.local.runtime import BatchPart, LoadConfig
from llamaql.engine.local.sampler import LlamaSampler
from llamaql.ports.engine import Requester, ResolvedOptions

MODEL = DEFAULT_MODEL_DIR / DEFAULT_MODEL_FILE


class CountingSampler:
    def __init__(self, inner: LlamaSampler, owner: SteeredRuntime, seed: int | None) -> None:
        self._inner = inner
        self._owner = owner
        self._seed = seed
        self._count = 0

    def sample(self, index: int) -> int:
        token = self._inner.sample(index)
        self._count += 1
        if self._owner.on_sample is not None:
            self._owner.on_sample(self._count, self._seed)
        return token

    def close(self) -> None:
        self._inner.close()


class SteeredRuntime(LlamaRuntime):
    """The real runtime plus hooks: hold or fail the next decode, observe batches, count
    each reply's samples."""

    def __init__(self, config: LoadConfig) -> None:
        super().__init__(config)
        self.batches: list[list[BatchPart]] = []
        self.admitted = 0  # replies that got a sampler: joined a sequence
        self.held: threading.Event | None = None
        self.fail_next = False
        self.on_decode: Callable[[int], None] | None = None
        # (samples so far in this reply, its seed): seeds tell replies apart.
        self.on_sample: Callable[[int, int | None], None] | None = None

    def reset_hooks(self) -> None:
        self.held, self.fail_next = None, False
        self.on_decode = self.on_sample = None

    def hold_next(self) -> threading.Event:
        """Hold the scheduler in its next decode until the event is set."""
        self.held = threading.Event()
        return self.held

    def wait_batches(self, count: int) -> bool:
        """Until `count` batches were decoded; fails with how many there were."""
        eventually_blocking(
            lambda: len(self.batches), 30, holds=lambda seen: seen >= count, what="batches"
        )
        return True

    def decode(self, parts: Sequence[BatchPart]) -> int:
        self.batches.append(list(parts))
        if self.on_decode is not None:
            self.on_decode(len(self.batches))
        gate, self.held = self.held, None
        if gate is not None:
            gate.wait(60)
        if self.fail_next:
            self.fail_next = False
            return -3  # what llama.cpp answers when a compute fails
        return super().decode(parts)

    def new_sampler(self, options: ResolvedOptions) -> CountingSampler:  # type: ignore[override]
        self.admitted += 1
        return CountingSampler(super().new_sampler(options), self, options.seed)


def _engine(**overrides: object) -> Iterator[tuple[LlamaEngine, SteeredRuntime]]:
    for engine, runtimes in _lanes_engine(**overrides):
        yield engine, runtimes[0]


def _lanes_engine(**overrides: object) -> Iterator[tuple[LlamaEngine, list[SteeredRuntime]]]:
    """An engine on the real model and its runtimes, one per decode lane."""
    if not Path(MODEL).is_file():
        pytest.skip(f"{MODEL} is missing: run `make model`")
    runtimes: list[SteeredRuntime] = []

    def factory(config: LoadConfig) -> SteeredRuntime:
        runtimes.append(SteeredRuntime(config))
        return runtimes[-1]

    kv_dir = Path(tempfile.mkdtemp(prefix="llamaql-kv-"))
    config = load_config(model_path=MODEL, kv_dir=kv_dir, **overrides)
    engine = LlamaEngine(
        config.engine, shared_start=shared_start(config.chat), runtime_factory=factory
    )
    asyncio.run(engine.start())
    yield engine, runtimes
    asyncio.run(engine.stop())
    shutil.rmtree(kv_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def _model_engine() -> Iterator[tuple[LlamaEngine, SteeredRuntime]]:
    # Small batches so that prompt evaluation takes several steps (cancel points).
    yield from _engine(n_batch=64, queue_size=2, parallel=4, stream_interval_ms=0)


@pytest.fixture(scope="session")
def _serial_engine() -> Iterator[tuple[LlamaEngine, SteeredRuntime]]:
    yield from _engine(n_batch=64, queue_size=4, parallel=1, stream_interval_ms=0)


@pytest.fixture(scope="session")
def _three_engine() -> Iterator[tuple[LlamaEngine, SteeredRuntime]]:
    yield from _engine(n_batch=64, parallel=3, stream_interval_ms=0)


@pytest.fixture
def three_engine(
    _three_engine: tuple[LlamaEngine, SteeredRuntime],
) -> Iterator[tuple[LlamaEngine, SteeredRuntime]]:
    """Three sequences, for where a reply is placed; the runtime records every batch."""
    yield _three_engine
    _three_engine[1].reset_hooks()


@pytest.fixture(scope="session")
def small_engine() -> Iterator[LlamaEngine]:
    """The same model with a 256-token context, for truncation and overflow."""
    for engine, _runtime in _engine(context_size=256, parallel=1):
        yield engine


@pytest.fixture(scope="session")
def uncached_engine() -> Iterator[LlamaEngine]:
    """The serial engine's settings without parking (in memory or on disk). The same batch
    size matters: llama.cpp's logits depend slightly on how a prompt is split into batches."""
    for engine, _runtime in _engine(prompt_cache_mb=0, kv_disk_mb=0, n_batch=64, parallel=1):
        yield engine


@pytest.fixture
def engine(_model_engine: tuple[LlamaEngine, SteeredRuntime]) -> Iterator[LlamaEngine]:
    yield _model_engine[0]
    _model_engine[1].reset_hooks()


@pytest.fixture
def runtime(_model_engine: tuple[LlamaEngine, SteeredRuntime]) -> SteeredRuntime:
    return _model_engine[1]


@pytest.fixture
def serial_engine(_serial_engine: tuple[LlamaEngine, SteeredRuntime]) -> Iterator[LlamaEngine]:
    """One sequence: replies queue behind each other (admission order, parking)."""
    yield _serial_engine[0]
    _serial_engine[1].reset_hooks()


@pytest.fixture
def serial_runtime(_serial_engine: tuple[LlamaEngine, SteeredRuntime]) -> SteeredRuntime:
    return _serial_engine[1]


_requesters = itertools.count()


def fresh_requester(user: str | None = None) -> Requester:
    """A conversation of its own (of `user`, or of a user of its own)."""
    n = next(_requesters)
    return Requester(user or f"user-{n}", f"conversation-{n}")


@pytest.fixture(scope="session")
def lanes_engine() -> Iterator[tuple[LlamaEngine, list[SteeredRuntime]]]:
    """Four sequences over two decode lanes of one thread each (LLAMAQL_DECODE_LANES)."""
    yield from _lanes_engine(
        n_threads=1, decode_lanes=2, parallel=4, n_batch=64, stream_interval_ms=0
    )
