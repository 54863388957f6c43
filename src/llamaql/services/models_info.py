"""The `model` query's use case: facts about the loaded (or configured) model."""

from __future__ import annotations

import asyncio
import logging
import os

from llamaql.config import MAX_CONTEXT_SIZE, EngineConfig
from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.ports.engine import Engine, ModelFileError, ModelInfo
from llamaql.ports.errors import DomainError

logger = logging.getLogger(__name__)


class ModelInfoService:
    """Asks the engine when there is one; otherwise reads the GGUF header once."""

    def __init__(self, config: EngineConfig, engine: Engine | None = None) -> None:
        self._config = config
        self._engine = engine
        self._cached: ModelInfo | None = None

    async def model_info(self) -> ModelInfo:
        if self._engine is not None:
            return self._engine.info()
        if self._cached is None:
            self._cached = await asyncio.to_thread(self._from_file)
        return self._cached

    def _from_file(self) -> ModelInfo:
        path = self._config.model_path
        try:
            meta = read_gguf_metadata(path)
        except ModelFileError as exc:
            logger.error("model query: %s", exc)
            raise DomainError(str(exc), code="ENGINE_ERROR") from exc
        context = self._config.context_size or min(meta.trained_context, MAX_CONTEXT_SIZE)
        return ModelInfo(
            name=meta.name,
            path=str(path),
            context_size=context,
            trained_context=meta.trained_context,
            backend="cpu",
            device="none (model not loaded)",
            gpu_layers=0,
            threads=self._config.n_threads or len(os.sched_getaffinity(0)),
            has_chat_template=meta.chat_template is not None,
        )
