"""One real server for the chat tests: the default model on a small context, two replies
decoded together and a one-slot queue (so QUEUE_FULL and dropped turns are reachable), a
real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.chat.live import Server, served

CONTEXT_SIZE = 512


@pytest.fixture(scope="session")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "LLAMAQL_CONTEXT_SIZE": str(CONTEXT_SIZE),
        "LLAMAQL_PARALLEL": "2",
        "LLAMAQL_QUEUE_SIZE": "1",
        # Titles have their own server (test_titles_api): none in the background here.
        "LLAMAQL_AUTO_TITLE": "false",
    }
    with served(tmp_path_factory.mktemp("chat-server"), "chat", env) as server:
        yield server
