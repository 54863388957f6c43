"""A remote engine that is down, or dies mid-reply: retryable ENGINE_ERROR, and what was
written says what happened (nothing when refused, the text so far when cut off)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.integration.chat.live import Http, Server, connect, free_port, new_user, stopped_cleanly
from tests.integration.remote.conftest import remote_server
from tests.integration.remote.upstream import DYING_PIECES, Upstream

USAGE = """query($id: ID!) { contextUsage(conversationId: $id, text: "hi") { fits } }"""
MODEL = "{ model { engine engineServer contextSize } }"


async def test_an_unreachable_engine_is_a_retryable_error_and_writes_nothing(
    tmp_path: Path,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    server = remote_server(tmp_path, nobody)
    try:
        user = new_user()
        http = Http(server, user)
        cid = await http.create_conversation()
        async with connect(server, user) as ws:
            events = await ws.stream(await ws.send_message(cid, "Hello?"))
        assert [e["__typename"] for e in events] == ["MessageFailed"]
        failed = events[0]
        assert failed["code"] == "ENGINE_ERROR"
        assert failed["retryable"] is True
        assert failed["assistantMessage"] is None
        assert await http.messages(cid) == []
        usage = await http.post(USAGE, id=cid)
        assert usage["errors"][0]["extensions"]["code"] == "ENGINE_ERROR"
        # The model query still answers, from the settings.
        info = (await http.data(MODEL))["model"]
        assert info == {"engine": "remote", "engineServer": "not reached yet", "contextSize": 512}
        async with httpx.AsyncClient() as client:
            page = (await client.get(f"http://127.0.0.1:{server.port}/metrics")).text
        assert "llamaql_engine_up 0.0" in page
    finally:
        stopped_cleanly(server)


async def test_a_reply_cut_off_mid_stream_is_stored_failed_with_its_text(dying: Server) -> None:
    user = new_user()
    http = Http(dying, user)
    cid = await http.create_conversation()
    async with connect(dying, user) as ws:
        events = await ws.stream(await ws.send_message(cid, "Say hello."))
    failed = events[-1]
    assert failed["__typename"] == "MessageFailed", events
    assert failed["code"] == "ENGINE_ERROR"
    assert failed["retryable"] is True
    reply = failed["assistantMessage"]
    assert reply["status"] == "FAILED"
    assert reply["text"] == "".join(DYING_PIECES)
    stored = await http.messages(cid)
    assert [(m["role"], m["status"], m["text"]) for m in stored] == [
        ("USER", "COMPLETE", "Say hello."),
        ("ASSISTANT", "FAILED", "".join(DYING_PIECES)),
    ]


@pytest.mark.model
@pytest.mark.slow
async def test_a_wrong_api_key_is_refused_without_writing(
    tmp_path: Path, upstream: Upstream
) -> None:
    server = remote_server(tmp_path, upstream.api_url, LLAMAQL_ENGINE_API_KEY="wrong-key")
    try:
        user = new_user()
        http = Http(server, user)
        cid = await http.create_conversation()
        async with connect(server, user) as ws:
            events = await ws.stream(await ws.send_message(cid, "Hello?"))
        assert [(e["__typename"], e["code"]) for e in events] == [("MessageFailed", "ENGINE_ERROR")]
        assert await http.messages(cid) == []
        assert "wrong-key" not in server.log.read_text()
    finally:
        stopped_cleanly(server)
