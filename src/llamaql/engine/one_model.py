"""The model questions of an engine that answers with one model (one LlamaEngine of
the local registry, and test fakes): every answer comes from its `info()`."""

from __future__ import annotations

from llamaql.ports.engine import ModelInfo, ModelStatus, UnknownModelError


class OneModel:
    """Mixin: `models`, `model_info`, `check_model` and `loaded_models` over `info()`."""

    def info(self) -> ModelInfo:
        raise NotImplementedError

    async def model_info(self, model: str | None) -> ModelInfo:
        if model is not None:
            await self.check_model(model)
        return self.info()

    async def models(self) -> list[ModelStatus]:
        info = self.info()
        return [
            ModelStatus(
                name=info.name,
                file_size=0,
                architecture="unknown",
                parameters=0,
                quantization="unknown",
                trained_context=info.trained_context,
                context_size=info.context_size,
                has_chat_template=info.has_chat_template,
                is_default=True,
                loaded=True,
                loading=False,
                live_replies=0,
                memory_bytes=0,
            )
        ]

    async def check_model(self, model: str) -> None:
        name = self.info().name
        if model != name:
            raise UnknownModelError(f"unknown model {model!r}; this server has {name!r}")

    def loaded_models(self) -> tuple[str, ...]:
        return (self.info().name,)
