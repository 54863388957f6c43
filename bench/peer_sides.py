"""The two servers the peer benchmark compares, behind one small interface: a `Side` opens
chats, a `Chat` gets its connection ready (`ready`, before the clock) and sends a user
message, returning its `StreamTiming`.

- llamaql: `llamaql serve` with its default settings (model titles on) except
  LLAMAQL_PARALLEL=N and the context per sequence; each chat is its own user, WebSocket
  (past connection_ack when opened) and untitled conversation, so the server keeps the
  history and writes a title after the first reply. `ready` is a ping/pong on the socket.
- llama-server: `llama-server -np N`; each chat keeps its message list and sends it whole
  (the OpenAI API is stateless), starting with the same system prompt llamaql adds.
  `ready` opens a fresh keep-alive HTTP connection for the chat with a `GET /health`, so
  the timed request finds it open (a fresh one each time: cpp-httplib closes a connection
  idle for 5 s, and an old one may be closed under the request).

Each server's whole log is copied to `log_as` when it stops, and its path recorded.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.client import StreamTiming, WsSession, create_conversation
from bench.common import usable_cores
from bench.llama_server import (
    GREEDY,
    LlamaServerConfig,
    LlamaServerProcess,
    slot_layout,
    stream_chat,
)
from bench.server import ChildServer, ServerProcess
from llamaql.config import Config

HTTP_TIMEOUT = httpx.Timeout(300.0, connect=30.0)  # a queued reply waits for the others
PARALLEL_LOG = re.compile(r"parallel|sequences", re.IGNORECASE)
TITLED_LOG = "titled by the model"  # services/chat/titles.py logs it at INFO per model title


class Chat(Protocol):
    async def ready(self) -> None: ...

    async def send(self, text: str, max_tokens: int) -> StreamTiming: ...


class Side(Protocol):
    name: str

    async def open_chat(self, stack: AsyncExitStack) -> Chat: ...

    def describe(self) -> dict[str, Any]: ...


def _log_text(server: ChildServer) -> str:
    try:
        return server.log_path.read_text(errors="replace")
    except OSError:
        return ""


@dataclass(slots=True)
class _LlamaqlChat:
    ws: WsSession
    conversation: str
    seed: int

    async def ready(self) -> None:
        await self.ws.ping()

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
        conversation = await create_conversation(self.http, self.server.http_url, user, None)
        return _LlamaqlChat(ws, conversation, self.seed)

    def describe(self) -> dict[str, Any]:
        """The variables passed (LLAMAQL_AUTO_TITLE is not among them: titles are on), the
        model titles written so far, and the server's log lines about parallel sequences
        (the engine logs "N sequences of C tokens" at load; none: it ignored
        LLAMAQL_PARALLEL)."""
        lines = _log_text(self.server).splitlines()
        said = [line.strip()[:240] for line in lines if PARALLEL_LOG.search(line)]
        return {
            "env": self.server.extra_env,
            "log_on_parallel": said[:3],
            "titles_written": sum(1 for line in lines if TITLED_LOG in line),
            "log": str(self.server.keep_log_as) if self.server.keep_log_as else None,
        }


@dataclass(slots=True)
class _PeerChat:
    url: str
    seed: int
    history: list[dict[str, str]]
    stack: AsyncExitStack
    http: httpx.AsyncClient | None = field(default=None)

    async def ready(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=limits)
        self.stack.push_async_callback(self.http.aclose)  # closing twice is harmless
        (await self.http.get(f"{self.url}/health")).raise_for_status()

    async def send(self, text: str, max_tokens: int) -> StreamTiming:
        assert self.http is not None, "call ready() before send()"
        messages = [*self.history, {"role": "user", "content": text}]
        timing = await stream_chat(
            self.http, self.url, messages, max_tokens=max_tokens, seed=self.seed
        )
        self.history = [*messages, {"role": "assistant", "content": timing.text}]
        return timing


@dataclass(slots=True)
class LlamaServerSide:
    server: LlamaServerProcess
    seed: int
    system_prompt: str
    name: str = "llama-server"

    async def open_chat(self, stack: AsyncExitStack) -> Chat:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return _PeerChat(self.server.url, self.seed, system, stack)

    def describe(self) -> dict[str, Any]:
        """The command, the sampling every request sends, and the slots the server says
        it made (`slot_layout_as_asked`: -np slots of the per-sequence context each)."""
        layout = slot_layout(_log_text(self.server))
        config = self.server.config
        return {
            "command": self.server.command(),
            "sampling": GREEDY,
            "slot_layout": layout,
            "slot_layout_as_asked": layout is not None
            and layout["n_slots"] == config.parallel
            and layout["n_ctx_slot"] == config.slot_context,
            "log": str(self.server.keep_log_as) if self.server.keep_log_as else None,
        }


def threads(settings: Config) -> int:
    """llama-server's -t: the engine's thread count (all usable cores unless configured)."""
    return settings.engine.n_threads or usable_cores()


@asynccontextmanager
async def llamaql_side(
    settings: Config,
    parallel: int,
    seed: int,
    slot_context: int,
    log_as: Path | None = None,
    *,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Side]:
    # LLAMAQL_CONTEXT_SIZE is per sequence, as llama-server's -c divided by -np.
    env = {"LLAMAQL_PARALLEL": str(parallel), "LLAMAQL_CONTEXT_SIZE": str(slot_context)}
    env.update(extra_env or {})
    async with (
        ServerProcess(settings, extra_env=env, log_level="INFO", command=command) as server,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http,
    ):
        server.keep_log_as = log_as
        yield LlamaqlSide(server, http, seed)


@asynccontextmanager
async def llama_server_side(
    settings: Config, parallel: int, seed: int, slot_context: int, log_as: Path | None = None
) -> AsyncIterator[Side]:
    config = LlamaServerConfig(
        model=settings.engine.model_path.resolve(),
        threads=threads(settings),
        parallel=parallel,
        slot_context=slot_context,
        n_batch=settings.engine.n_batch,
    )
    async with LlamaServerProcess(config) as server:
        server.keep_log_as = log_as
        yield LlamaServerSide(server, seed, settings.chat.system_prompt)
