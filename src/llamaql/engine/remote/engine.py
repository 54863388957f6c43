"""RemoteEngine: the Engine protocol over an OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

import httpx

from llamaql.config import EngineConfig, RemoteEngineConfig
from llamaql.engine import intake
from llamaql.engine.remote.dispatch import RemoteDispatch
from llamaql.engine.remote.listing import RemoteModel
from llamaql.engine.remote.models import RemoteModelList, remote_status
from llamaql.engine.remote.server import (
    ServerFacts,
    TokenCounter,
    check_response,
    discover,
    token_counter,
)
from llamaql.ports.engine import (
    ChatMessage,
    EngineError,
    EngineLoad,
    EngineUnavailableError,
    GenerationHandle,
    ModelInfo,
    ModelStatus,
    PreparedPrompt,
    Requester,
    SamplingOptions,
)
from llamaql.ports.options import resolve_options

logger = logging.getLogger(__name__)

# The context assumed when neither the server nor LLAMAQL_CONTEXT_SIZE says.
DEFAULT_CONTEXT_SIZE = 4096
CONNECT_TIMEOUT_S = 10.0


class RemoteEngine:
    """Replies stream from `LLAMAQL_ENGINE_URL`; no model is loaded here.

    At most `LLAMAQL_PARALLEL` replies stream at once and `LLAMAQL_QUEUE_SIZE` wait,
    admitted fairly across users by the same queue as the in-process engine, so
    QUEUE_FULL and queue positions mean what they mean there. The server is asked what
    it is at start (or, if it is down then, on the next prepare); prompts are budgeted
    with its tokenizer (see server.py). Its models are those it lists (models.py); a
    conversation's model is sent as the request's `model`, and None sends the default
    (`LLAMAQL_ENGINE_MODEL`, else the first listed).
    """

    def __init__(
        self,
        config: EngineConfig,
        remote: RemoteEngineConfig,
        *,
        transport: httpx.MockTransport | None = None,
    ) -> None:
        if remote.engine_url is None:
            raise EngineError("the remote engine needs LLAMAQL_ENGINE_URL")
        self._remote = remote
        self._url = remote.engine_url
        self._configured_context = config.context_size
        self._parallel = config.parallel
        self._replies = RemoteDispatch(
            queue_size=config.queue_size,
            parallel=config.parallel,
            stream_interval_s=config.stream_interval_ms / 1000.0,
            reached=self._reached,
        )
        self._client: httpx.AsyncClient | None = None
        self._counting_client: httpx.Client | None = None
        self._facts: ServerFacts | None = None
        self._counter: TokenCounter | None = None
        self._asking: asyncio.Lock | None = None
        self._transport = transport  # unit tests: a fake server
        # Whether the server answered the last request made to it (/metrics engine_up).
        self._reachable = False
        self._models = RemoteModelList(self._http, self._url, reached=self._reached)

    async def start(self) -> None:
        key = self._remote.engine_api_key
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        waits = self._remote.engine_timeout_s
        timeout = httpx.Timeout(waits, connect=min(CONNECT_TIMEOUT_S, waits))
        # Every reply in flight holds a connection, and counting or probing needs one more.
        limits = httpx.Limits(max_connections=self._parallel + 4)
        self._client = httpx.AsyncClient(
            headers=headers, timeout=timeout, limits=limits, transport=self._transport
        )
        self._counting_client = httpx.Client(
            headers=headers, timeout=timeout, transport=self._transport
        )
        self._asking = asyncio.Lock()
        self._replies.open(self._client, self._url)
        try:
            facts = await self._server()
        except EngineError as exc:
            logger.warning("remote engine not ready (%s); asking again at the next message", exc)
            return
        logger.info(
            "remote engine: %s at %s, model %s, context %d tokens, %d replies at once",
            facts.kind,
            self._url,
            facts.model or "(the server's default)",
            self._context_size(),
            self._parallel,
        )

    async def _server(self) -> ServerFacts:
        """What the server is, asked once it answers; EngineUnavailableError until then."""
        if self._client is None or self._counting_client is None or self._asking is None:
            raise EngineError("the engine is not running")
        async with self._asking:
            if self._facts is None:
                try:
                    facts = await discover(self._client, self._url, self._remote.engine_model)
                except EngineUnavailableError:
                    self._reachable = False
                    raise
                self._reachable = True
                self._counter = token_counter(self._counting_client, facts, self._url)
                self._models.remember(facts.listed)
                self._facts = facts
        return self._facts

    async def stop(self) -> None:
        await self._replies.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._counting_client is not None:
            self._counting_client.close()
            self._counting_client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise EngineError("the engine is not running")
        return self._client

    def _context_size(self, told: int | None = None) -> int:
        """LLAMAQL_CONTEXT_SIZE within what the server tells of the model (`told`, else
        its default model's context)."""
        if told is None:
            told = self._facts.context_size if self._facts is not None else None
        configured = self._configured_context
        if told and configured:
            return min(told, configured)
        return configured or told or DEFAULT_CONTEXT_SIZE

    def _default_model(self) -> str:
        facts = self._facts
        return (facts.model if facts else None) or self._remote.engine_model or "unknown"

    def info(self) -> ModelInfo:
        return self._info(self._default_model())

    def _info(self, name: str, told_context: int | None = None) -> ModelInfo:
        kind = self._facts.kind if self._facts else "not reached yet"
        context = self._context_size(told_context)
        trained = told_context or (self._facts.context_size if self._facts else None)
        return ModelInfo(
            name=name,
            path=name,
            context_size=context,
            trained_context=trained or context,
            backend="remote",
            device=kind,
            gpu_layers=0,
            threads=0,
            has_chat_template=True,  # the server renders its model's own template
            engine="remote",
            engine_server=kind,
        )

    async def model_info(self, model: str | None) -> ModelInfo:
        if model is None or model == self._default_model():
            return self.info()
        listed = await self._models.find(model)
        return self._info(listed.name, listed.context_size)

    async def models(self) -> list[ModelStatus]:
        """The upstream's list (cached briefly); the default model is always in it,
        alone (not loaded) while the upstream has never answered."""
        try:
            listing = await self._models.models()
        except EngineUnavailableError as exc:
            logger.warning("listing the remote models: %s", exc)
            listing = ()
        default = self._default_model()
        if all(model.name != default for model in listing):
            listing = (RemoteModel(default, loaded=self._reachable), *listing)
        return [
            remote_status(
                model,
                context_size=self._context_size(model.context_size),
                is_default=model.name == default,
                live_replies=self._replies.streaming(
                    model.name, self._facts.model if self._facts else None
                ),
            )
            for model in listing
        ]

    async def check_model(self, model: str) -> None:
        if model != self._default_model():
            await self._models.find(model)

    def loaded_models(self) -> tuple[str, ...]:
        listed = [model.name for model in self._models.last() if model.loaded]
        return tuple(listed) or ((self._default_model(),) if self._reachable else ())

    async def prepare(
        self,
        messages: Sequence[ChatMessage],
        options: SamplingOptions,
        *,
        model: str | None = None,
        owner: str | None = None,  # nothing is kept here: the server renders
    ) -> PreparedPrompt:
        facts = await self._server()
        told = None
        if model is not None and model != facts.model:
            # Chosen when it was listed: gone from the upstream since is MODEL_UNAVAILABLE.
            told = (await self._models.still_listed(model)).context_size
        counter = self._counter
        assert counter is not None
        if counter.probes:
            await self._probe()  # counting here never reaches the server: is it up?
        # Counted with the model that will answer: the default is named too (vLLM needs
        # it), and is the model the reply records.
        counted_with = model or facts.model
        prepared = await asyncio.to_thread(
            self._prepare, counter, messages, options, counted_with, self._context_size(told)
        )
        return replace(prepared, model=counted_with)  # the reply records who wrote it

    async def _probe(self) -> None:
        assert self._client is not None
        try:
            response = await self._client.get(f"{self._url}/models")
        except httpx.HTTPError as exc:
            self._reachable = False
            raise EngineUnavailableError(f"the engine cannot be reached: {exc}") from exc
        self._reachable = True
        check_response(response, "listing models")

    def _prepare(
        self,
        counter: TokenCounter,
        messages: Sequence[ChatMessage],
        options: SamplingOptions,
        model: str | None,
        context_size: int,
    ) -> PreparedPrompt:
        resolved = resolve_options(options, context_size=context_size)
        return intake.fit(
            messages,
            resolved,
            encode=lambda fitted: counter.encode(fitted, model),
            context_size=context_size,
            with_messages=True,
        )

    def has_room(self) -> bool:
        return self._replies.has_room()

    def load(self) -> EngineLoad:
        return EngineLoad(
            waiting=self._replies.waiting(),
            active=self._replies.active(),
            reachable=self._reachable,
        )

    def submit(
        self, prompt: PreparedPrompt, requester: Requester, *, background: bool = False
    ) -> GenerationHandle:
        if self._client is None or self._facts is None:
            raise EngineError("the engine is not running")
        if not prompt.messages:
            raise EngineError("the prompt has no messages")
        return self._replies.submit(
            prompt, requester, default_model=self._facts.model, background=background
        )

    def expect_reply(self) -> None:
        """Nothing to pause: background requests run on the server's own slots."""

    def reply_abandoned(self) -> None:
        """Nothing waits for a reply here (see expect_reply)."""

    def forget(self, requester: Requester) -> None:
        """Nothing to drop: this engine keeps no KV state; the server's own prompt cache
        is the server's."""

    def _reached(self, answered: bool) -> None:
        self._reachable = answered
