"""A real server for the terminal client's tests, and the client driven in-process.

One reply decoded at a time (`LLAMAQL_PARALLEL=1`), so a second reply waits in line and
the client's queue position can be seen; no background titles, so nothing but the
tests' own replies uses the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest
from tests.integration.chat.gqlws import EVENT_TIMEOUT_S
from tests.integration.chat.live import Server, new_user, served
from tests.integration.model_files import two_model_server

from llamaql.client.api import GraphQLHttp, Identity
from llamaql.client.console import Console
from llamaql.client.session import ChatSession

# A reply has visibly begun once this much of it is printed ("1. 2." or "1, 2").
REPLY_BEGUN_CHARS = 4


@pytest.fixture(scope="session")
def client_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "LLAMAQL_CONTEXT_SIZE": "1024",
        "LLAMAQL_PARALLEL": "1",
        "LLAMAQL_QUEUE_SIZE": "4",
        "LLAMAQL_AUTO_TITLE": "false",
    }
    with served(tmp_path_factory.mktemp("client-server"), "client", env) as server:
        yield server


@pytest.fixture(scope="session")
def models_client_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose models folder holds the default model and a Q8_0 copy of it."""
    env = {"LLAMAQL_CONTEXT_SIZE": "1024", "LLAMAQL_AUTO_TITLE": "false"}
    with two_model_server(tmp_path_factory, "client", env) as server:
        yield server


@dataclass
class Terminal:
    """A ChatSession whose console is a StringIO: lines in, printed text out."""

    session: ChatSession
    output: io.StringIO
    user: str

    async def run(self, *lines: str) -> str:
        """Handle the lines in order; what they printed."""
        start = len(self.output.getvalue())
        for line in lines:
            assert await self.session.handle(line), line
        return self.output.getvalue()[start:]

    async def printed(self, text: str, start: int = 0) -> None:
        """Wait (bounded) until `text` appears in the output after `start`."""
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            while True:
                if text in self.output.getvalue()[start:]:
                    return
                await asyncio.sleep(0.05)

    async def streaming(self, start: int) -> None:
        """Wait (bounded) until a reply started at `start` has printed some text."""
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            while True:
                if len(self.output.getvalue()[start:].strip()) >= REPLY_BEGUN_CHARS:
                    return
                await asyncio.sleep(0.05)


TerminalFactory = Callable[..., Terminal]


@pytest.fixture
async def terminal(client_server: Server) -> AsyncIterator[TerminalFactory]:
    """Make terminals on the live server: `terminal()` for a new user, `terminal(user)`."""
    async with terminals(client_server) as make:
        yield make


@pytest.fixture
async def models_terminal(models_client_server: Server) -> AsyncIterator[TerminalFactory]:
    """Make terminals on the server with two models."""
    async with terminals(models_client_server) as make:
        yield make


@contextlib.asynccontextmanager
async def terminals(server: Server) -> AsyncIterator[TerminalFactory]:
    clients: list[GraphQLHttp] = []

    def make(user: str | None = None, options: dict[str, object] | None = None) -> Terminal:
        user = user or new_user()
        api = GraphQLHttp(server.http_url, Identity.of(user, None))
        clients.append(api)
        output = io.StringIO()
        session = ChatSession(
            api=api, ws_url=server.ws_url, console=Console(output), options=options
        )
        return Terminal(session=session, output=output, user=user)

    try:
        yield make
    finally:
        for api in clients:
            await api.__aexit__(None, None, None)
