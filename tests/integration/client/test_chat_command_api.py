"""`llamaql chat` as a real process against a live server: SIGINT mid-reply cancels the
reply (stored CANCELLED) and the program keeps taking commands; Ctrl-C twice at the
prompt, or end of input, ends it; the identity comes from the environment or a bearer
token for a LLAMAQL_AUTH=jwt server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import jwt
import pytest
from tests.integration.chat.gqlws import EVENT_TIMEOUT_S
from tests.integration.chat.live import LONG_TEXT, Http, Server, new_user, served

pytestmark = [pytest.mark.model, pytest.mark.slow]

SECRET = "client-test-secret-of-at-least-32-bytes"


class ChatProcess:
    """One `llamaql chat` child: lines written to its stdin, its output collected."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LLAMAQL_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llamaql", "chat", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**clean, **(env or {})},
        )
        self._output = b""
        self._lock = threading.Lock()
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._collector.start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        stdout = self.process.stdout
        assert isinstance(stdout, io.BufferedReader), stdout
        while chunk := stdout.read1(4096):
            with self._lock:
                self._output += chunk

    @property
    def output(self) -> str:
        with self._lock:
            return self._output.decode(errors="replace")

    def send(self, line: str) -> int:
        """Type a line; returns where the output stood, for `wait_for(..., start)`."""
        start = len(self.output)
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()
        return start

    def wait_for(self, text: str, start: int = 0) -> None:
        """Wait (bounded) until `text` is printed after `start`."""
        self._wait(lambda printed: text in printed, start, f"{text!r} never printed")

    def wait_for_reply(self, start: int) -> None:
        """Wait (bounded) until a reply started at `start` has printed some text."""
        self._wait(lambda printed: len(printed.strip()) >= 4, start, "no reply text")

    def _wait(self, done: Callable[[str], bool], start: int, failure: str) -> None:
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while not done(self.output[start:]):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{failure}; output:\n{self.output}")
            time.sleep(0.05)

    def wait(self) -> int:
        return self.process.wait(timeout=EVENT_TIMEOUT_S)

    def close(self) -> None:
        """Kill it if it still runs, and close the pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._collector.join(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


@pytest.fixture
def chat_process() -> Iterator[list[ChatProcess]]:
    started: list[ChatProcess] = []
    yield started
    for process in started:
        process.close()


def test_sigint_cancels_the_reply_and_the_program_goes_on(
    client_server: Server, chat_process: list[ChatProcess]
) -> None:
    user = new_user()
    chat = ChatProcess(
        "--url", client_server.http_url, "--temperature", "0", "--max-tokens", "400",
        env={"LLAMAQL_USER_ID": user},
    )  # fmt: skip
    chat_process.append(chat)
    chat.wait_for("> ")  # the prompt is up: Ctrl-C is the client's now
    chat.wait_for("[new conversation: Counting]", chat.send("/new Counting"))
    start = chat.send(LONG_TEXT)
    chat.wait_for_reply(start)
    chat.process.send_signal(signal.SIGINT)
    chat.wait_for("[cancelled]", start)

    # Still running, still taking commands.
    chat.wait_for("*  1. Counting", chat.send("/list"))
    listing_end = len(chat.output)
    http = Http(client_server, user)
    listed = asyncio.run(http.data("query { conversations { edges { node { id } } } }"))
    (edge,) = listed["conversations"]["edges"]
    reply = asyncio.run(http.messages(edge["node"]["id"]))[-1]
    assert reply["status"] == "CANCELLED"
    assert reply["finishReason"] == "cancelled"
    assert reply["text"] in chat.output

    # At the prompt: a first Ctrl-C says how to leave, a second one leaves.
    chat.process.send_signal(signal.SIGINT)
    chat.wait_for("(Ctrl-C again or Ctrl-D to quit)", listing_end)
    chat.process.send_signal(signal.SIGINT)
    assert chat.wait() == 0, chat.output


def test_end_of_input_quits(client_server: Server, chat_process: list[ChatProcess]) -> None:
    chat = ChatProcess("--url", client_server.http_url, "--user", new_user())
    chat_process.append(chat)
    chat.wait_for("connected to")
    assert chat.process.stdin is not None
    chat.process.stdin.close()
    assert chat.wait() == 0, chat.output


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"LLAMAQL_AUTH": "jwt", "LLAMAQL_JWT_SECRET": SECRET, "LLAMAQL_AUTO_TITLE": "false"}
    with served(tmp_path_factory.mktemp("client-jwt-server"), "jwt", env) as server:
        yield server


def test_a_bearer_token_names_the_user_of_a_jwt_server(
    jwt_server: Server, chat_process: list[ChatProcess]
) -> None:
    sub = str(uuid.uuid4())
    token = jwt.encode({"sub": sub, "exp": int(time.time()) + 300}, SECRET, "HS256")
    chat = ChatProcess("--url", jwt_server.http_url, env={"LLAMAQL_TOKEN": token})
    chat_process.append(chat)
    chat.wait_for("[new conversation: Mine]", chat.send("/new Mine"))
    chat.wait_for("*  1. Mine", chat.send("/list"))
    chat.send("/quit")
    assert chat.wait() == 0, chat.output

    # X-User-ID means nothing to this server: naming the token's user that way is refused.
    refused = ChatProcess("--url", jwt_server.http_url, "--user", sub)
    chat_process.append(refused)
    assert refused.wait() == 1
    assert "error UNAUTHENTICATED" in refused.output
    forged = jwt.encode({"sub": sub, "exp": int(time.time()) + 300}, "x" * 40, "HS256")
    wrong = ChatProcess("--url", jwt_server.http_url, "--token", forged)
    chat_process.append(wrong)
    assert wrong.wait() == 1
    assert "error UNAUTHENTICATED" in wrong.output
