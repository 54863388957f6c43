"""LlamaEngine: the Engine protocol over one llama.cpp worker thread."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from llamaql.engine.budget import fit_prompt
from llamaql.engine.generation import run_job
from llamaql.engine.jobs import Job
from llamaql.engine.metadata import GgufMetadata, read_gguf_metadata
from llamaql.engine.options import ResolvedOptions, resolve_options
from llamaql.engine.runtime import LoadConfig, ModelRuntime
from llamaql.engine.scheduler import JobQueue
from llamaql.engine.templates import ChatTemplate, load_chat_template
from llamaql.engine.types import (
    ChatMessage,
    EngineError,
    GenerationHandle,
    GenerationResult,
    ModelInfo,
    PreparedPrompt,
    SamplingOptions,
)
from llamaql.settings import MAX_CONTEXT_SIZE, Settings

logger = logging.getLogger(__name__)
RuntimeFactory = Callable[[LoadConfig], ModelRuntime]


def _llama_runtime(config: LoadConfig) -> ModelRuntime:
    from llamaql.engine.llama_runtime import LlamaRuntime  # imports llama.cpp lazily

    return LlamaRuntime(config)


def _gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def load_config(settings: Settings, meta: GgufMetadata) -> LoadConfig:
    """Settings with their documented defaults filled in from the model and the machine."""
    trained = meta.trained_context or MAX_CONTEXT_SIZE
    gpu_layers = settings.n_gpu_layers
    if gpu_layers is None:
        gpu_layers = -1 if _gpu_offload_supported() else 0
    return LoadConfig(
        model_path=settings.model_path,
        context_size=settings.context_size or min(trained, MAX_CONTEXT_SIZE),
        gpu_layers=gpu_layers,
        threads=settings.n_threads or len(os.sched_getaffinity(0)),
        batch_size=settings.n_batch,
        use_extra_bufts=settings.use_extra_bufts,
        prompt_cache_bytes=settings.prompt_cache_mb * 1024 * 1024,
    )


class LlamaEngine:
    """The in-process engine: one model, one context, one worker thread, a bounded queue.

    `start()` loads the model off the event loop; `prepare()` renders and budgets prompts
    on a thread; `submit()` never blocks; `stop()` cancels what is pending, joins the
    worker and frees the model.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        runtime_factory: RuntimeFactory = _llama_runtime,
        default_max_tokens: int = 512,
    ) -> None:
        self._settings = settings
        self._runtime_factory = runtime_factory
        self._default_max_tokens = default_max_tokens
        self._queue = JobQueue(settings.queue_size)
        self._runtime: ModelRuntime | None = None
        self._template: ChatTemplate | None = None
        self._info: ModelInfo | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        self._thread = threading.Thread(target=self._work, name="llamaql-engine", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        meta = read_gguf_metadata(self._settings.model_path)
        config = load_config(self._settings, meta)
        began = time.perf_counter()
        runtime = self._runtime_factory(config)
        facts = runtime.facts
        self._template = load_chat_template(
            meta.chat_template,
            bos_token=meta.bos_token,
            eos_token=meta.eos_token,
            model_name=meta.name,
        )
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
        self._runtime = runtime
        logger.info(
            "model %s loaded: backend %s on %s, %d layers offloaded, context %d tokens, "
            "%d threads, %.2f s",
            meta.name,
            facts.backend,
            facts.device,
            facts.gpu_layers,
            facts.context_size,
            facts.threads,
            time.perf_counter() - began,
        )

    async def stop(self) -> None:
        running = self._queue.running
        for job in self._queue.close():
            job.finish(GenerationResult(text="", finish_reason="cancelled"))
        if running is not None:
            running.cancel()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join)
        if self._runtime is not None:
            runtime, self._runtime = self._runtime, None
            await asyncio.to_thread(runtime.close)
            logger.info("model closed")

    def info(self) -> ModelInfo:
        if self._info is None:
            raise EngineError("the engine has not started")
        return self._info

    def _resolve(self, options: SamplingOptions) -> ResolvedOptions:
        return resolve_options(
            options,
            context_size=self.info().context_size,
            default_max_tokens=self._default_max_tokens,
        )

    def validate_options(self, options: SamplingOptions) -> None:
        self._resolve(options)

    async def prepare(
        self, messages: Sequence[ChatMessage], options: SamplingOptions
    ) -> PreparedPrompt:
        return await asyncio.to_thread(self._prepare, messages, options)

    def _prepare(self, messages: Sequence[ChatMessage], options: SamplingOptions) -> PreparedPrompt:
        resolved = self._resolve(options)
        runtime, template = self._runtime, self._template
        if runtime is None or template is None:
            raise EngineError("the engine is not running")
        fitted = fit_prompt(
            messages,
            render=template.render,
            tokenize=runtime.tokenize,
            context_size=self.info().context_size,
            reply_tokens=resolved.max_tokens,
        )
        if fitted.dropped_messages:
            logger.info("dropped %d oldest messages to fit the context", fitted.dropped_messages)
        return PreparedPrompt(
            text=fitted.text,
            tokens=fitted.tokens,
            dropped_messages=fitted.dropped_messages,
            max_tokens=fitted.max_tokens,
        )

    def has_room(self) -> bool:
        return self._runtime is not None and self._queue.has_room()

    def submit(self, prompt: PreparedPrompt, options: SamplingOptions) -> GenerationHandle:
        if self._runtime is None:
            raise EngineError("the engine is not running")
        if not prompt.tokens:
            raise EngineError("the prompt is empty")
        job = Job(prompt, self._resolve(options), asyncio.get_running_loop())
        self._queue.put(job)
        return job

    def _work(self) -> None:
        runtime, template = self._runtime, self._template
        if runtime is None or template is None:
            raise EngineError("the worker started before the model was loaded")
        extra_stops = template.extra_stops
        while (job := self._queue.take()) is not None:
            try:
                job.finish(run_job(runtime, job, extra_stops))
            except Exception as exc:
                # One request failed; the context's contents are unknown, the worker goes on.
                logger.exception("generation failed")
                runtime.reset()
                error = (
                    exc
                    if isinstance(exc, EngineError)
                    else EngineError(f"generation failed: {type(exc).__name__}: {exc}")
                )
                job.fail(error)
            finally:
                self._queue.done(job)
        logger.debug("engine worker stopped")
