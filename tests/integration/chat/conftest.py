"""One real server for the chat tests: the default model on a small context, two replies
decoded together and a one-slot queue (so QUEUE_FULL and dropped turns are reachable), a
real SQLite file."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from tests.integration.chat.live import DEFAULT_MODEL_PATH, Server

CONTEXT_SIZE = 512


@pytest.fixture(scope="session")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"default model not fetched ({DEFAULT_MODEL_PATH}): run make install")
    folder = tmp_path_factory.mktemp("chat-server")
    server = Server(
        database=folder / "chat.db",
        log=folder / "server.log",
        env={
            "LLAMAQL_CONTEXT_SIZE": str(CONTEXT_SIZE),
            "LLAMAQL_PARALLEL": "2",
            "LLAMAQL_QUEUE_SIZE": "1",
            # Titles have their own server (test_titles_api): none in the background here.
            "LLAMAQL_AUTO_TITLE": "false",
        },
    ).start()
    yield server
    # uvicorn re-raises SIGTERM after a clean shutdown; the log says whether it was clean.
    assert server.stop() in (0, -signal.SIGTERM), server.tail()
    assert "llamaql stopped" in server.tail(), server.tail()
