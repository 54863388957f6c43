"""A real `llamaql serve` process on a free port, and clients that talk to it.

Integration and end-to-end chat tests go through the same doors a user does: HTTP
POSTs for queries and mutations, and a WebSocket speaking graphql-transport-ws for
sendMessage. Waits are bounded but generous: the test machines are small and shared.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from tests.eventually import eventually
from tests.integration.chat.gqlws import EVENT_TIMEOUT_S, Socket

from llamaql.config import DEFAULT_MODEL_FILE

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_MODEL_PATH = REPO_ROOT / "models" / DEFAULT_MODEL_FILE
START_TIMEOUT_S = 180.0

MESSAGES = """
query Messages($id: ID!) {
  conversation(id: $id) {
    title
    messages(first: 100) { edges { node { id role status text finishReason } } }
  }
}
"""
TITLE = "query($id: ID!) { conversation(id: $id) { title } }"
# Greedy decoding of this prompt runs to max_tokens: a reply long enough to interrupt.
LONG_TEXT = "Count from 1 to 300, separated by commas."
LONG_OPTIONS: dict[str, Any] = {"temperature": 0.0, "maxTokens": 400}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """One `llamaql serve` child process."""

    database: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self) -> Self:
        env = {
            **os.environ,
            "LLAMAQL_DATABASE_URL": f"sqlite+aiosqlite:///{self.database}",
            "LLAMAQL_MODEL_PATH": str(DEFAULT_MODEL_PATH),
            "LLAMAQL_LOG_LEVEL": "INFO",
            **self.env,
        }
        command = [sys.executable, "-m", "llamaql", "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            # cwd: the database's folder, so no .env of the checkout applies.
            self.process = subprocess.Popen(
                command, env=env, cwd=self.database.parent, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited ({self.process.returncode}):\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"server not healthy after {START_TIMEOUT_S}s:\n{self.tail()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def require_model() -> None:
    """Skip the calling test or fixture when the default model has not been fetched."""
    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"default model not fetched ({DEFAULT_MODEL_PATH}): run make install")


def stopped_cleanly(server: Server) -> None:
    """Stop with SIGTERM and assert the shutdown was clean: uvicorn re-raises SIGTERM
    after a clean shutdown, so either exit status will do; the log says whether the
    lifespan's teardown ran to its end."""
    assert server.stop() in (0, -signal.SIGTERM), server.tail()
    assert "llamaql stopped" in server.tail(), server.tail()


@contextlib.contextmanager
def served(folder: Path, name: str, env: dict[str, str]) -> Iterator[Server]:
    """A fixture's live server on the default model: `<name>.db` and server.log in
    `folder`, `env` on top of Server's; skipped without the model, stopped cleanly after."""
    require_model()
    server = Server(database=folder / f"{name}.db", log=folder / "server.log", env=env).start()
    yield server
    stopped_cleanly(server)


class Http:
    """Queries and mutations over HTTP as one user."""

    def __init__(self, server: Server, user: str) -> None:
        self.server = server
        self.user = user

    async def post(self, query: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=EVENT_TIMEOUT_S) as client:
            response = await client.post(
                self.server.http_url,
                json={"query": query, "variables": variables},
                headers={"X-User-ID": self.user},
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.post(query, **variables)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def create_conversation(self, **fields: Any) -> str:
        data = await self.data(
            "mutation($input: CreateConversationInput) {"
            " createConversation(input: $input) { id } }",
            input=fields,
        )
        conversation_id: str = data["createConversation"]["id"]
        return conversation_id

    async def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        conversation = (await self.data(MESSAGES, id=conversation_id))["conversation"]
        return [edge["node"] for edge in conversation["messages"]["edges"]]

    async def title(self, conversation_id: str) -> str | None:
        title: str | None = (await self.data(TITLE, id=conversation_id))["conversation"]["title"]
        return title

    async def model_title(self, conversation_id: str, fallback: str, tries: int) -> str | None:
        """The title once it is no longer `fallback` (the model's title request runs in
        the background after the first reply); fails if it still is after `tries` polls
        a fifth of a second apart."""
        return await eventually(
            lambda: self.title(conversation_id),
            tries * 0.2,
            holds=lambda title: title != fallback,
            what=f"a model title instead of {fallback!r}",
            interval=0.2,
        )

    async def cancel(self, message_id: str) -> dict[str, Any]:
        return await self.post(
            "mutation($id: ID!) { cancelGeneration(messageId: $id) }", id=message_id
        )


async def stored_reply(http: Http, cid: str, status: str) -> dict[str, Any]:
    """The conversation's last message once it has this status (bounded wait)."""
    messages = await eventually(
        lambda: http.messages(cid),
        EVENT_TIMEOUT_S,
        holds=lambda messages: bool(messages) and messages[-1]["status"] == status,
        what=f"a last message {status}",
        interval=0.1,
    )
    return messages[-1]


def connect(server: Server, user: str | None) -> Socket:
    return Socket(server.ws_url, {"X-User-ID": user} if user is not None else None)


def new_user() -> str:
    return str(uuid.uuid4())


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["text"] for e in events if e["__typename"] == "TokenDelta")
