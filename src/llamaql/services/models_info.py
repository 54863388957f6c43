"""The `model` and `models` queries' use case: facts about the models, loaded or not."""

from __future__ import annotations

import asyncio
import logging
import os

from llamaql.config import MAX_CONTEXT_SIZE, EngineConfig
from llamaql.engine.local.metadata import GgufMetadata, read_gguf_metadata
from llamaql.ports.engine import Engine, EngineError, ModelFileError, ModelInfo, ModelStatus
from llamaql.ports.errors import BadInputError, DomainError
from llamaql.ports.model_names import model_name

logger = logging.getLogger(__name__)
ModelFacts = tuple[ModelInfo, ModelStatus]


class ModelInfoService:
    """Asks the engine when there is one; otherwise reads the default model's GGUF
    header once (an app without an engine knows that model only)."""

    def __init__(self, config: EngineConfig, engine: Engine | None = None) -> None:
        self._config = config
        self._engine = engine
        self._cached: ModelFacts | None = None

    async def model_info(self, name: str | None = None) -> ModelFacts:
        """One model's facts (None: the default); BadInputError for an unknown name."""
        if self._engine is None:
            facts = await self._from_file()
            if name is not None and name != facts[0].name:
                raise BadInputError(f"unknown model {name!r}; the models query lists them")
            return facts
        try:
            info = await self._engine.model_info(name)
        except EngineError as exc:
            raise _domain_error(exc) from None
        statuses = {status.name: status for status in await self._engine.models()}
        status = statuses.get(name or info.name) or next(
            (s for s in statuses.values() if s.is_default), None
        )
        if status is None:
            raise DomainError(f"model {info.name!r} is not available", code="MODEL_UNAVAILABLE")
        return info, status

    async def models(self) -> list[ModelFacts]:
        """Every model, by name."""
        if self._engine is None:
            return [await self._from_file()]
        facts: list[ModelFacts] = []
        for status in await self._engine.models():
            try:
                facts.append((await self._engine.model_info(status.name), status))
            except EngineError:
                continue  # removed since the scan
        return facts

    async def _from_file(self) -> ModelFacts:
        if self._cached is None:
            self._cached = await asyncio.to_thread(self._read_file)
        return self._cached

    def _read_file(self) -> ModelFacts:
        path = self._config.model_path
        try:
            meta = read_gguf_metadata(path)
        except ModelFileError as exc:
            logger.error("model query: %s", exc)
            raise DomainError(str(exc), code="ENGINE_ERROR") from exc
        context = self._config.context_size or min(meta.trained_context, MAX_CONTEXT_SIZE)
        name = model_name(path) or path.stem
        info = ModelInfo(
            name=name,
            path=str(path),
            context_size=context,
            trained_context=meta.trained_context,
            backend="cpu",
            device="none (model not loaded)",
            gpu_layers=0,
            threads=self._config.n_threads or len(os.sched_getaffinity(0)),
            has_chat_template=meta.chat_template is not None,
        )
        return info, _unloaded_status(name, meta, context)


def _unloaded_status(name: str, meta: GgufMetadata, context: int) -> ModelStatus:
    return ModelStatus(
        name=name,
        file_size=meta.file_size,
        architecture=meta.architecture,
        parameters=meta.parameters,
        quantization=meta.quantization,
        trained_context=meta.trained_context,
        context_size=context,
        has_chat_template=meta.chat_template is not None,
        is_default=True,
        loaded=False,
        loading=False,
        live_replies=0,
        memory_bytes=0,
    )


def _domain_error(exc: EngineError) -> DomainError:
    if exc.code == "BAD_USER_INPUT":
        return BadInputError(str(exc))
    return DomainError(str(exc), code=exc.code)
