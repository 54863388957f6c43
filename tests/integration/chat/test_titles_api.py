"""Model-written titles end to end: a real server with titles on, the real model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.chat.live import Http, Server, connect, new_user, served

from llamaql.services.chat.events import title_from

pytestmark = [pytest.mark.model, pytest.mark.slow]
QUESTION = "What is the capital of France? Tell me about the history of that great city."


@pytest.fixture
def titled_server(tmp_path: Path) -> Iterator[Server]:
    env = {"LLAMAQL_CONTEXT_SIZE": "1024", "LLAMAQL_PARALLEL": "2"}
    with served(tmp_path, "titles", env) as server:
        yield server


async def test_the_model_titles_a_conversation_after_its_first_reply(
    titled_server: Server,
) -> None:
    user = new_user()
    http = Http(titled_server, user)
    cid = await http.create_conversation()
    async with connect(titled_server, user) as ws:
        done = (await ws.stream(await ws.send_message(cid, QUESTION, {"maxTokens": 24})))[-1]
    assert done["message"]["status"] == "COMPLETE"
    fallback = title_from(QUESTION)
    assert fallback.endswith("…")
    title = await http.model_title(cid, fallback, tries=300)
    assert title
    assert title != fallback
    assert "\n" not in title
    assert len(title) <= 60
    print(f"model title: {title!r}")


async def test_a_titled_conversation_keeps_its_title(titled_server: Server) -> None:
    user = new_user()
    http = Http(titled_server, user)
    cid = await http.create_conversation(title="My own title")
    untitled = await http.create_conversation()
    async with connect(titled_server, user) as ws:
        await ws.stream(await ws.send_message(cid, QUESTION, {"maxTokens": 8}))
        # A title request of the titled one would have been queued before this one's:
        # once this one is titled, the engine has run the background work before it.
        await ws.stream(await ws.send_message(untitled, QUESTION, {"maxTokens": 8}))
    await http.model_title(untitled, title_from(QUESTION), tries=300)
    assert await http.title(cid) == "My own title"
    log = titled_server.log.read_text()
    assert f"conversation {untitled} titled by the model" in log
    assert f"conversation {cid} titled" not in log
