"""Model-written titles through the remote engine: the title request is a background
request like any other, streamed from the server after the first reply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.chat.live import Http, Server, connect, new_user, stopped_cleanly
from tests.integration.remote.conftest import remote_server
from tests.integration.remote.upstream import Upstream

from llamaql.services.chat.events import title_from

pytestmark = [pytest.mark.model, pytest.mark.slow]
QUESTION = "What is the capital of France? Tell me about the history of that great city."


@pytest.fixture
def titled(tmp_path: Path, upstream: Upstream) -> Iterator[Server]:
    server = remote_server(tmp_path, upstream.api_url, LLAMAQL_AUTO_TITLE="true")
    yield server
    stopped_cleanly(server)


async def test_the_remote_model_titles_a_conversation(titled: Server) -> None:
    user = new_user()
    http = Http(titled, user)
    cid = await http.create_conversation()
    async with connect(titled, user) as ws:
        done = (await ws.stream(await ws.send_message(cid, QUESTION, {"maxTokens": 24})))[-1]
    assert done["message"]["status"] == "COMPLETE"
    fallback = title_from(QUESTION)
    title = await http.model_title(cid, fallback, tries=600)
    assert title
    assert title != fallback
    assert "\n" not in title
    assert "titled by the model" in titled.tail(200)
