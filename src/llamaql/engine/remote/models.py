"""The upstream's models: its `/v1/models`, asked again at most every few seconds.

llama-server in router mode (`--models-dir`) lists every model it can load, each with a
`status` (`loaded`, `loading`, `unloaded`); Ollama lists its pulled models; vLLM its
served model with `max_model_len`; llama-cpp-python's server the models of its config
file. Only the name, and where the server says them the context and whether the model
is loaded, are known of a remote model: the file's size, architecture, parameters and
quantization are not (the `models` query shows 0 and "unknown").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from llamaql.engine.remote.listing import RemoteModel, listed_models
from llamaql.engine.remote.server import check_response
from llamaql.ports.engine import (
    EngineUnavailableError,
    ModelStatus,
    ModelUnavailableError,
    UnknownModelError,
)

logger = logging.getLogger(__name__)

# How long a listing answers before the upstream is asked again: a model pulled into
# Ollama shows up within this, and a page that lists models on every view costs the
# upstream one request per LISTING_TTL_S at most.
LISTING_TTL_S = 5.0


class RemoteModelList:
    """The upstream's models, cached for LISTING_TTL_S. While the upstream cannot be
    reached, the last listing answers (if there was one); otherwise the error stands."""

    def __init__(
        self,
        client: Callable[[], httpx.AsyncClient],
        api_url: str,
        *,
        reached: Callable[[bool], None],
        ttl_s: float | None = None,
    ) -> None:
        self._client = client
        self._url = api_url
        self._reached = reached
        self._ttl_s = LISTING_TTL_S if ttl_s is None else ttl_s
        self._listing: tuple[RemoteModel, ...] | None = None
        self._asked_at = 0.0
        self._asking = asyncio.Lock()

    def last(self) -> tuple[RemoteModel, ...]:
        """The last listing, without asking (empty before the first answer)."""
        return self._listing or ()

    def remember(self, listing: tuple[RemoteModel, ...]) -> None:
        """A listing read elsewhere (at discovery): fresh from now."""
        self._listing, self._asked_at = listing, time.monotonic()

    async def models(self) -> tuple[RemoteModel, ...]:
        async with self._asking:
            if self._listing is None or time.monotonic() - self._asked_at >= self._ttl_s:
                await self._ask()
            assert self._listing is not None
            return self._listing

    async def _ask(self) -> None:
        try:
            response = await self._client().get(f"{self._url}/models")
            listing = listed_models(check_response(response, "listing models"))
        except (httpx.HTTPError, EngineUnavailableError) as exc:
            self._reached(False)
            if self._listing is None:
                if isinstance(exc, EngineUnavailableError):
                    raise
                raise EngineUnavailableError(f"the engine cannot be reached: {exc}") from exc
            logger.warning("listing the remote models failed (%s); using the last list", exc)
            self._asked_at = time.monotonic()  # not again at once: the upstream is down
            return
        self._reached(True)
        self.remember(listing)

    async def find(self, name: str) -> RemoteModel:
        """The listed model `name`; UnknownModelError (naming a few others) when the
        upstream does not list it."""
        listing = await self.models()
        found = next((model for model in listing if model.name == name), None)
        if found is None:
            names = ", ".join(repr(model.name) for model in listing[:5])
            raise UnknownModelError(
                f"unknown model {name!r}; the remote engine lists {names or 'none'}"
            )
        return found

    async def still_listed(self, name: str) -> RemoteModel:
        """`find`, for a conversation's model at a send: gone from the upstream is
        ModelUnavailableError (the name was valid when it was chosen)."""
        try:
            return await self.find(name)
        except UnknownModelError as exc:
            raise ModelUnavailableError(
                f"the model {name!r} is no longer listed by the remote engine"
            ) from exc


def remote_status(
    model: RemoteModel, *, context_size: int, is_default: bool, live_replies: int
) -> ModelStatus:
    """A listed model as the `models` query shows it: what the file would tell is
    unknown (0, "unknown"); the server renders each model's own template."""
    return ModelStatus(
        name=model.name,
        file_size=0,
        architecture="unknown",
        parameters=0,
        quantization="unknown",
        trained_context=context_size,
        context_size=context_size,
        has_chat_template=True,
        is_default=is_default,
        loaded=model.loaded,
        loading=model.loading,
        live_replies=live_replies,
        memory_bytes=0,
    )
