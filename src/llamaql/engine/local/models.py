"""LocalModels: the Engine protocol over every model of the catalog, one LlamaEngine per
loaded model, loaded on demand and unloaded when idle (policy: residency.py).

Each loaded model is exactly the one-model engine (its own context of LLAMAQL_PARALLEL
sequences, scheduler thread, fair admission queue, KV parking and KV files, whose
identity is the model file's, so a state never goes into another model). Their decodes
share the CPU's threads (core_share.py). Prompts for a model not loaded yet are prepared
with its vocabulary alone; its replies wait (`QueuePosition.loading`) while it loads,
off the event loop (slots.py loads and unloads). A failed load fails the replies waiting
for it; other models keep serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from llamaql.config import EngineConfig
from llamaql.engine.local.catalog import CatalogModel, ModelCatalog
from llamaql.engine.local.core_share import CoreShare
from llamaql.engine.local.engine import LlamaEngine
from llamaql.engine.local.handles import LoadingHandle, TrackedHandle
from llamaql.engine.local.loading import context_size_for, llama_runtimes
from llamaql.engine.local.residency import Limits, never_fits
from llamaql.engine.local.slots import Slot, Slots
from llamaql.ports.engine import (
    ChatMessage,
    Engine,
    EngineError,
    EngineLoad,
    GenerationHandle,
    ModelFileError,
    ModelInfo,
    ModelStatus,
    ModelUnavailableError,
    PreparedPrompt,
    QueueFullError,
    Requester,
    SamplingOptions,
    UnknownModelError,
)
from llamaql.ports.errors import ConversationBusyError

logger = logging.getLogger(__name__)
# (settings with the model's path, the shared cores) -> an engine for that one model.
EngineFactory = Callable[[EngineConfig, CoreShare], Engine]


def llama_engine_factory(shared_start: Sequence[ChatMessage]) -> EngineFactory:
    def make(config: EngineConfig, cores: CoreShare) -> Engine:
        runtimes = llama_runtimes(cores)
        return LlamaEngine(config, shared_start=shared_start, runtime_factory=runtimes)

    return make


class LocalModels:
    """See the module docstring; `clock` is monotonic seconds (tests pass their own)."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        engine_factory: EngineFactory,
        catalog: ModelCatalog | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._catalog = catalog or ModelCatalog(config)
        self._factory = engine_factory
        self._clock = clock
        self._cores = CoreShare(config.n_threads or len(os.sched_getaffinity(0)))
        memory = config.model_memory_mb
        self._limits = Limits(
            config.max_loaded_models,
            memory * 2**20 if memory is not None else None,
            config.model_idle_seconds,
        )
        self._slots = Slots(self._limits, clock)  # loaded, loading or waiting for room
        self._idle: dict[str, Engine] = {}  # not loaded: for preparing prompts only
        self._known: dict[str, CatalogModel] = {}  # each model as last found

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Load the default model (its failure fails the start, as before)."""
        name = self._catalog.default_name
        model = await self._find(name)
        await self._slots.ready(self._slot(model))
        self._slots.start_sweeping()

    async def stop(self) -> None:
        await self._slots.stop()
        for engine in self._idle.values():
            await engine.stop()
        self._idle.clear()

    # -- facts -------------------------------------------------------------------------

    def info(self) -> ModelInfo:
        name = self._catalog.default_name
        slot = self._slots.loaded(name)
        if slot is not None:
            return replace(slot.engine.info(), name=name)
        if name in self._slots.infos:
            return self._slots.infos[name]
        raise EngineError("the engine has not started")

    async def model_info(self, model: str | None) -> ModelInfo:
        found = await self._find(model or self._catalog.default_name, unknown=True)
        slot = self._slots.loaded(found.name)
        if slot is not None:
            return replace(slot.engine.info(), name=found.name)
        meta = found.meta
        return ModelInfo(
            name=found.name,
            path=str(found.path),
            context_size=context_size_for(self._config, meta),
            trained_context=meta.trained_context,
            backend="cpu",
            device="none (model not loaded)",
            gpu_layers=0,
            threads=0,
            has_chat_template=meta.chat_template is not None,
        )

    async def models(self) -> list[ModelStatus]:
        found = await asyncio.to_thread(self._catalog.scan)
        return [self._status(model) for model in found.values()]

    def _status(self, model: CatalogModel) -> ModelStatus:
        meta, slot = model.meta, self._slots.get(model.name)
        loaded = slot is not None and slot.loaded
        return ModelStatus(
            name=model.name,
            file_size=meta.file_size,
            architecture=meta.architecture,
            parameters=meta.parameters,
            quantization=meta.quantization,
            trained_context=meta.trained_context,
            context_size=context_size_for(self._config, meta),
            has_chat_template=meta.chat_template is not None,
            is_default=model.name == self._catalog.default_name,
            loaded=loaded,
            loading=slot is not None and not loaded,
            live_replies=slot.live if slot is not None else 0,
            memory_bytes=slot.memory_bytes if slot is not None and loaded else 0,
        )

    async def check_model(self, model: str) -> None:
        await self._find(model, unknown=True)

    def check_deletable(self, name: str) -> None:
        """deleteModel's hook (ports.model_files.ModelsInUse): a model with a reply live,
        queued or waiting for its load is not deleted under it (a loaded, idle one may
        be: its weights stay mapped until it is unloaded)."""
        slot = self._slots.get(name)
        if slot is not None and (slot.live or not slot.loaded):
            raise ConversationBusyError(
                f"model {name} is in use ({slot.live} replies live or queued, or loading); "
                "try again once they have ended"
            )

    def loaded_models(self) -> tuple[str, ...]:
        return tuple(slot.model.name for slot in self._slots if slot.loaded)

    def load(self) -> EngineLoad:
        waiting = active = 0
        for slot in self._slots:
            if slot.loaded:
                load = slot.engine.load()
                waiting += load.waiting
                active += load.active
            else:
                waiting += slot.live
        return EngineLoad(waiting=waiting, active=active)

    def estimate_bytes(self, model: CatalogModel) -> int:
        """Weights (the file) and the KV of LLAMAQL_PARALLEL full sequences."""
        meta = model.meta
        tokens = context_size_for(self._config, meta) * self._config.parallel
        return meta.file_size + meta.kv_bytes_per_token * tokens

    # -- requests ----------------------------------------------------------------------

    async def prepare(
        self,
        messages: Sequence[ChatMessage],
        options: SamplingOptions,
        *,
        model: str | None = None,
        owner: str | None = None,
    ) -> PreparedPrompt:
        name = model or self._catalog.default_name
        slot = self._slots.get(name)
        # A model with a slot renders on one worker thread while the catalog is read on
        # another: the two thread hops before the submit overlap instead of adding up.
        early = None
        if slot is not None:
            early = asyncio.ensure_future(slot.engine.prepare(messages, options, owner=owner))
        try:
            found = await self._find(name)
            reason = never_fits(self.estimate_bytes(found), self._limits)
            if reason is not None:
                raise ModelUnavailableError(f"model {found.name!r} cannot be loaded: {reason}")
        except BaseException:
            if early is not None:
                _discard(early)
            raise
        try:
            if early is not None:
                prompt = await early
            else:  # a slot made meanwhile (a load that began) takes over its idle engine
                slot = self._slots.get(found.name)
                engine = slot.engine if slot is not None else self._idle_engine(found)
                prompt = await engine.prepare(messages, options, owner=owner)
        except ModelFileError as exc:
            raise ModelUnavailableError(f"model {found.name!r} cannot be read: {exc}") from exc
        return replace(prompt, model=found.name)

    def has_room(self) -> bool:
        return True  # each model's queue refuses at submit when full

    def submit(
        self, prompt: PreparedPrompt, requester: Requester, *, background: bool = False
    ) -> GenerationHandle:
        name = prompt.model or self._catalog.default_name
        slot = self._slots.get(name)
        if slot is not None and slot.loaded:
            handle = slot.engine.submit(prompt, requester, background=background)
            self._slots.used(slot)
            if not background:
                self._announced_elsewhere(slot)
            return TrackedHandle(handle, self._slots.ended(slot))
        if slot is None:
            slot = self._slot(self._catalog_entry(name))
        if sum(s.live for s in self._slots if not s.loaded) >= self._config.queue_size:
            raise QueueFullError(f"the request queue is full ({self._config.queue_size} waiting)")
        ready = self._slots.ready(slot)
        self._slots.used(slot)
        if not background:
            self._announced_elsewhere(None)  # to a model that is not loaded yet
        chosen = slot

        def submit_now() -> GenerationHandle:
            return chosen.engine.submit(prompt, requester, background=background)

        return LoadingHandle(asyncio.shield(ready), submit_now, self._slots.ended(chosen))

    def expect_reply(self) -> None:
        for slot in self._slots:
            if slot.loaded:
                slot.engine.expect_reply()

    def reply_abandoned(self) -> None:
        self._announced_elsewhere(None)

    def _announced_elsewhere(self, chosen: Slot | None) -> None:
        """The reply request announced to every loaded model went to `chosen` (None: to
        none): the others stop waiting for it."""
        for slot in self._slots:
            if slot.loaded and slot is not chosen:
                slot.engine.reply_abandoned()

    def forget(self, requester: Requester) -> None:
        for engine in [*(s.engine for s in self._slots), *self._idle.values()]:
            engine.forget(requester)

    def _slot(self, model: CatalogModel) -> Slot:
        slot = self._slots.get(model.name)
        if slot is None:
            engine = self._idle.pop(model.name, None) or self._new_engine(model)
            slot = self._slots.add(model, engine, self.estimate_bytes(model))
        return slot

    # -- the catalog -------------------------------------------------------------------

    async def _find(self, name: str, *, unknown: bool = False) -> CatalogModel:
        """The catalog's model `name`; absent: UnknownModelError when `unknown` (a name
        a client gave), else ModelUnavailableError (a conversation's model whose file
        has gone)."""
        found = await asyncio.to_thread(self._catalog.find, name)
        if found is not None:
            self._known[name] = found
            return found
        if unknown:
            raise UnknownModelError(f"unknown model {name!r}; the models query lists them")
        raise ModelUnavailableError(f"model {name!r} is not available: its file is gone")

    def _catalog_entry(self, name: str) -> CatalogModel:
        known = self._known.get(name)
        if known is None:  # submit() comes after prepare(), which found it
            raise ModelUnavailableError(f"model {name!r} was not prepared")
        return known

    def _idle_engine(self, model: CatalogModel) -> Engine:
        engine = self._idle.get(model.name)
        if engine is None:
            engine = self._idle[model.name] = self._new_engine(model)
        return engine

    def _new_engine(self, model: CatalogModel) -> Engine:
        config = self._config.model_copy(update={"model_path": model.path})
        return self._factory(config, self._cores)


def _discard(rendering: asyncio.Future[PreparedPrompt]) -> None:
    """A render nobody will read: stopped if still waiting, its failure not reported."""
    if not rendering.done():
        rendering.cancel()
    elif not rendering.cancelled():
        rendering.exception()
