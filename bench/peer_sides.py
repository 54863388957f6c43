"""The two servers the peer benchmark compares, behind one small interface: a `Side` opens
chats, a `Chat` sends a user message and returns its `StreamTiming`.

- llamaql: `llamaql serve` with LLAMAQL_PARALLEL=N; each chat is its own user, WebSocket
  and conversation, so the server keeps the history.
- llama-server: `llama-server -np N`; each chat keeps its message list and sends it whole
  (the OpenAI API is stateless), starting with the same system prompt llamaql adds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from bench.client import StreamTiming, WsSession, create_conversation
from bench.common import usable_cores
from bench.llama_server import LlamaServerConfig, LlamaServerProcess, stream_chat
from bench.server import ServerProcess
from llamaql.settings import Settings

HTTP_TIMEOUT = httpx.Timeout(300.0, connect=30.0)  # a queued reply waits for the others
PARALLEL_LOG = re.compile(r"parallel|sequences", re.IGNORECASE)


class Chat(Protocol):
    async def send(self, text: str, max_tokens: int) -> StreamTiming: ...


class Side(Protocol):
    name: str

    async def open_chat(self, stack: AsyncExitStack) -> Chat: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class _LlamaqlChat:
    ws: WsSession
    conversation: str
    seed: int

    async def send(self, text: str, max_tokens: int) -> StreamTiming:
        options = {"temperature": 0.0, "seed": self.seed, "maxTokens": max_tokens}
        return await self.ws.send_message(self.conversation, text, options)


@dataclass(slots=True)
class LlamaqlSide:
    server: ServerProcess
    http: httpx.AsyncClient
    seed: int
    name: str = "llamaql"

    async def open_chat(self, stack: AsyncExitStack) -> Chat:
        user = str(uuid.uuid4())
        ws = await stack.enter_async_context(WsSession(self.server.ws_url, user))
        conversation = await create_conversation(self.http, self.server.http_url, user, "peer")
        return _LlamaqlChat(ws, conversation, self.seed)

    def describe(self) -> dict[str, Any]:
        """The variables passed, and the server's log lines about parallel sequences (the
        engine logs "N sequences of C tokens" at load; none: it ignores LLAMAQL_PARALLEL)."""
        try:
            lines = self.server.log_path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        said = [line.strip()[:240] for line in lines if PARALLEL_LOG.search(line)]
        return {"env": self.server.extra_env, "log_on_parallel": said[:3]}


@dataclass(slots=True)
class _PeerChat:
    http: httpx.AsyncClient
    url: str
    seed: int
    history: list[dict[str, str]] = field(default_factory=list)

    async def send(self, text: str, max_tokens: int) -> StreamTiming:
        messages = [*self.history, {"role": "user", "content": text}]
        timing = await stream_chat(
            self.http, self.url, messages, max_tokens=max_tokens, seed=self.seed
        )
        self.history = [*messages, {"role": "assistant", "content": timing.text}]
        return timing


@dataclass(slots=True)
class LlamaServerSide:
    server: LlamaServerProcess
    http: httpx.AsyncClient
    seed: int
    system_prompt: str
    name: str = "llama-server"

    async def open_chat(self, stack: AsyncExitStack) -> Chat:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return _PeerChat(self.http, self.server.url, self.seed, system)

    def describe(self) -> dict[str, Any]:
        return {"command": self.server.command()}


def threads(settings: Settings) -> int:
    """llama-server's -t: the engine's thread count (all usable cores unless configured)."""
    return settings.n_threads or usable_cores()


@asynccontextmanager
async def llamaql_side(
    settings: Settings, parallel: int, seed: int, slot_context: int
) -> AsyncIterator[Side]:
    # LLAMAQL_CONTEXT_SIZE is per sequence, as llama-server's -c divided by -np.
    env = {"LLAMAQL_PARALLEL": str(parallel), "LLAMAQL_CONTEXT_SIZE": str(slot_context)}
    async with (
        ServerProcess(settings, extra_env=env, log_level="INFO") as server,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http,
    ):
        yield LlamaqlSide(server, http, seed)


@asynccontextmanager
async def llama_server_side(
    settings: Settings, parallel: int, seed: int, slot_context: int
) -> AsyncIterator[Side]:
    config = LlamaServerConfig(
        model=settings.model_path.resolve(),
        threads=threads(settings),
        parallel=parallel,
        slot_context=slot_context,
        n_batch=settings.n_batch,
    )
    # A new connection per request: llama-server (cpp-httplib) may drop a kept-alive
    # connection after a streamed reply, and httpx then fails the next request on it with
    # "Server disconnected without sending a response" (seen from the 4th sequential turn).
    limits = httpx.Limits(max_connections=parallel * 2 + 4, max_keepalive_connections=0)
    async with (
        LlamaServerProcess(config) as server,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=limits) as http,
    ):
        yield LlamaServerSide(server, http, seed, settings.system_prompt)
