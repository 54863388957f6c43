"""LlamaEngine: the Engine protocol over one llama.cpp context and its scheduler thread."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from llamaql.config import EngineConfig
from llamaql.engine import intake
from llamaql.engine.admission import AdmissionQueue
from llamaql.engine.local.core_share import CoreShare
from llamaql.engine.local.encoding import PromptEncoder
from llamaql.engine.local.kv_files import KVFileStore, model_checksum
from llamaql.engine.local.kv_writer import KVFileWriter
from llamaql.engine.local.loading import (
    RuntimeFactory,
    decode_lanes,
    llama_runtimes,
    resolve_load_config,
)
from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.engine.local.parking import KVParking, common_prefix
from llamaql.engine.local.runtime import ModelRuntime, Vocabulary
from llamaql.engine.local.scheduler import BatchScheduler
from llamaql.engine.local.templates import ChatTemplate, load_chat_template
from llamaql.engine.local.unloaded import UnloadedEncoding, VocabFactory
from llamaql.engine.one_model import OneModel
from llamaql.ports.engine import (
    ChatMessage,
    EngineError,
    EngineLoad,
    GenerationHandle,
    ModelInfo,
    PreparedPrompt,
    Requester,
    SamplingOptions,
)
from llamaql.ports.options import resolve_options

logger = logging.getLogger(__name__)
# How long background work stays paused for a reply request that has begun and not yet
# been submitted (it is submitted within tens of milliseconds, or refused).
REPLY_EXPECTED_S = 2.0


def _llama_vocab(path: Path) -> Vocabulary:
    from llamaql.engine.local.llama_runtime import LlamaVocab  # imports llama.cpp lazily

    return LlamaVocab(path)


def shared_prefix(encoder: PromptEncoder, start: Sequence[ChatMessage]) -> tuple[int, ...]:
    """The prompt tokens every conversation that begins with the messages `start` shares:
    the template's markup and those messages, up to where the first user's text begins."""
    if not start:
        return ()
    one = encoder.encode([*start, ChatMessage("user", "a")])[1]
    other = encoder.encode([*start, ChatMessage("user", "b")])[1]
    return tuple(one[: common_prefix(one, other)])


class LlamaEngine(OneModel):
    """The in-process engine: one model, its `LLAMAQL_PARALLEL` sequences in one context
    (or split evenly over independent decode lanes, `decode_lanes`: a context and a
    scheduler thread each), a scheduler thread per context decoding its sequences
    together, one bounded queue admitting fairly to all of them, one KV parking.

    `start()` loads the model off the event loop; `prepare()` resolves options, renders
    and budgets prompts on a thread; `submit()` never blocks; `stop()` cancels what is
    pending and live, joins the scheduler and frees the model.

    `shared_start` is what most prompts begin with (the services' default system
    prompt, given by the composition root): its tokens are evaluated once at start and
    copied into each new conversation's sequence. Prompts themselves come whole with
    each request; nothing here decides what they say.
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        shared_start: Sequence[ChatMessage] = (),
        runtime_factory: RuntimeFactory | None = None,
        vocab_factory: VocabFactory = _llama_vocab,
    ) -> None:
        self._config = config
        # Before start() (or while it loads), prompts are prepared with the vocabulary
        # alone: a model-per-conversation registry prepares before it loads.
        self._unloaded = UnloadedEncoding(config, vocab_factory)
        self._stopped = False
        self._shared_start = tuple(shared_start)
        # By default the engine's lanes share the CPU's threads among themselves alone.
        self._runtime_factory = runtime_factory or llama_runtimes(
            CoreShare(config.n_threads or len(os.sched_getaffinity(0)))
        )
        self._queue = AdmissionQueue(config.queue_size)
        self._parking = KVParking(config.prompt_cache_mb * 1024 * 1024)
        self._stream_interval = config.stream_interval_ms / 1000.0
        self._runtime: ModelRuntime | None = None  # the first lane's: tokenizes prompts
        self._runtimes: list[ModelRuntime] = []
        self._template: ChatTemplate | None = None
        self._encoder: PromptEncoder | None = None  # the loaded model's, keeping tokens
        self._info: ModelInfo | None = None
        self._threads: list[threading.Thread] = []
        self._schedulers: list[BatchScheduler] = []

    async def start(self) -> None:
        runtimes, template = await asyncio.to_thread(self._load)
        runtime = runtimes[0]
        self._parking.files = await asyncio.to_thread(self._open_kv_files, runtime)
        self._parking.add_lanes(len(runtimes))
        shared = shared_prefix(PromptEncoder(template, runtime.tokenize), self._shared_start)
        self._schedulers = [
            BatchScheduler(
                lane_runtime,
                self._queue,
                self._parking,
                extra_stops=template.extra_stops,
                shared_prefix=shared,
                lane=lane,
            )
            for lane, lane_runtime in enumerate(runtimes)
        ]
        for lane, scheduler in enumerate(self._schedulers):
            name = "llamaql-engine" if lane == 0 else f"llamaql-engine-{lane}"
            thread = threading.Thread(target=scheduler.run, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def _load(self) -> tuple[list[ModelRuntime], ChatTemplate]:
        meta = read_gguf_metadata(self._config.model_path)
        config = resolve_load_config(self._config, meta)
        lanes = decode_lanes(self._config, config)
        config = replace(config, sequences=config.sequences // lanes)
        began = time.perf_counter()
        runtimes: list[ModelRuntime] = []
        try:
            for _ in range(lanes):  # the weights are mapped from the file: shared
                runtimes.append(self._runtime_factory(config))
        except BaseException:
            for loaded in runtimes:
                loaded.close()
            raise
        runtime = runtimes[0]
        facts = runtime.facts
        self._template = load_chat_template(
            meta.chat_template,
            bos_token=meta.bos_token,
            eos_token=meta.eos_token,
            model_name=meta.name,
        )
        self._encoder = PromptEncoder(self._template, runtime.tokenize, cache=True)
        self._info = ModelInfo(
            name=meta.name,
            path=str(config.model_path),
            context_size=facts.context_size,
            trained_context=meta.trained_context,
            backend=facts.backend,
            device=facts.device,
            gpu_layers=facts.gpu_layers,
            threads=facts.threads,
            has_chat_template=not self._template.is_fallback,
        )
        self._runtime, self._runtimes = runtime, runtimes
        logger.info(
            "model %s loaded: backend %s on %s, %d layers offloaded, %d sequences of %d "
            "tokens in %d decode lane(s) (KV about %d MiB), %d threads, %.2f s",
            meta.name,
            facts.backend,
            facts.device,
            facts.gpu_layers,
            facts.sequences * lanes,
            facts.context_size,
            lanes,
            facts.kv_bytes * lanes // (1024 * 1024),
            facts.threads,
            time.perf_counter() - began,
        )
        return runtimes, self._template

    def _open_kv_files(self, runtime: ModelRuntime) -> KVFileWriter | None:
        """The KV files of this model and context (None with LLAMAQL_KV_DISK_MB=0)."""
        config = self._config
        if config.kv_disk_mb == 0:
            return None
        # Everything a state's meaning depends on: the model file and the state format.
        identity = f"model {model_checksum(config.model_path)}; {runtime.facts.state_format}"
        store = KVFileStore(config.kv_dir.absolute(), config.kv_disk_mb * 1024 * 1024, identity)
        try:
            store.open()
        except OSError as exc:
            logger.warning("KV files off: cannot use %s: %s", store.directory, exc)
            return None
        logger.info(
            "KV files in %s: %d kept, budget %d MiB",
            store.directory,
            len(store.files()),
            config.kv_disk_mb,
        )
        return KVFileWriter(store)

    async def stop(self) -> None:
        self._stopped = True
        # The scheduler ends its live replies as cancelled once it sees the queue closed.
        intake.end_waiting(self._queue)
        threads, self._threads = self._threads, []
        for thread in threads:
            await asyncio.to_thread(thread.join)
        if self._runtimes:
            runtimes, self._runtimes, self._runtime = self._runtimes, [], None
            for runtime in runtimes:
                await asyncio.to_thread(runtime.close)
            # Waits for the KV files the scheduler wrote as it stopped.
            await asyncio.to_thread(self._parking.clear)
            logger.info("model closed")
        await asyncio.to_thread(self._unloaded.close)

    def info(self) -> ModelInfo:
        if self._info is None:
            raise EngineError("the engine has not started")
        return self._info

    async def prepare(
        self,
        messages: Sequence[ChatMessage],
        options: SamplingOptions,
        *,
        model: str | None = None,  # one model: the registry (models.py) picks this engine
        owner: str | None = None,
    ) -> PreparedPrompt:
        return await asyncio.to_thread(self._prepare, messages, options, owner)

    def _prepare(
        self, messages: Sequence[ChatMessage], options: SamplingOptions, owner: str | None
    ) -> PreparedPrompt:
        runtime, encoder, info = self._runtime, self._encoder, self._info
        if self._stopped:
            raise EngineError("the engine is not running")
        if runtime is not None and encoder is not None and info is not None:
            context_size = info.context_size
        else:
            tokenize, template, context_size = self._unloaded.get()
            encoder = PromptEncoder(template, tokenize)
        resolved = resolve_options(options, context_size=context_size)
        encode = partial(encoder.encode, owner=owner)
        prompt = intake.fit(messages, resolved, encode=encode, context_size=context_size)
        if prompt.dropped_messages:
            logger.info("dropped %d oldest messages to fit the context", prompt.dropped_messages)
        return prompt

    def has_room(self) -> bool:
        return self._runtime is not None and self._queue.has_room()

    def load(self) -> EngineLoad:
        return EngineLoad(
            waiting=self._queue.waiting(),
            active=sum(scheduler.active for scheduler in self._schedulers),
        )

    def submit(
        self, prompt: PreparedPrompt, requester: Requester, *, background: bool = False
    ) -> GenerationHandle:
        if self._runtime is None:
            raise EngineError("the engine is not running")
        if not prompt.tokens:
            raise EngineError("the prompt is empty")
        return intake.queue_job(
            self._queue,
            prompt,
            requester,
            stream_interval=self._stream_interval,
            background=background,
            home=self._home(requester),
        )

    def _home(self, requester: Requester) -> int | None:
        """The lane whose idle sequence holds the conversation's KV (None: none, or one
        lane)."""
        schedulers = self._schedulers
        if len(schedulers) > 1:
            for lane, scheduler in enumerate(schedulers):
                if scheduler.holds(requester):
                    return lane
        return None

    def expect_reply(self) -> None:
        self._queue.hold_background(REPLY_EXPECTED_S)

    def reply_abandoned(self) -> None:
        self._queue.withdraw()

    def forget(self, requester: Requester) -> None:
        self._parking.forget(requester)
