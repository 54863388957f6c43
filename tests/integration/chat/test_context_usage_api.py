"""contextUsage end to end: the real model's prompt preparation, matching the send."""

from __future__ import annotations

import pytest
from tests.integration.chat.conftest import CONTEXT_SIZE
from tests.integration.chat.live import Http, Server, connect, new_user

pytestmark = [pytest.mark.model, pytest.mark.slow]

USAGE = """query($id: ID!, $text: String) {
  contextUsage(conversationId: $id, text: $text) {
    contextSize promptTokens replyTokens droppedMessages fits
  }
}"""


async def test_usage_matches_what_the_send_then_reports(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation(options={"temperature": 0.0, "maxTokens": 8})
    async with connect(chat_server, user) as ws:
        for text in ("What is the capital of France?", "And of Spain?"):
            usage = (await http.data(USAGE, id=cid, text=text))["contextUsage"]
            done = (await ws.stream(await ws.send_message(cid, text)))[-1]
            assert done["__typename"] == "MessageCompleted", done
            assert usage == {
                "contextSize": CONTEXT_SIZE,
                "promptTokens": done["message"]["usage"]["promptTokens"],
                "replyTokens": 8,
                "droppedMessages": 0,
                "fits": True,
            }
    # Without text: the history as it stands, and nothing was written by asking.
    bare = (await http.data(USAGE, id=cid))["contextUsage"]
    assert 0 < bare["promptTokens"] < usage["promptTokens"] + 20
    assert len(await http.messages(cid)) == 4


async def test_a_text_too_long_for_the_context_does_not_fit(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    usage = (await http.data(USAGE, id=cid, text="word " * 600))["contextUsage"]
    assert usage["fits"] is False
    assert usage["promptTokens"] > CONTEXT_SIZE
    async with connect(chat_server, user) as ws:
        refused = await ws.stream(await ws.send_message(cid, "word " * 600))
    assert refused[-1]["code"] == "CONTEXT_OVERFLOW"


async def test_another_users_conversation_is_not_found(chat_server: Server) -> None:
    cid = await Http(chat_server, new_user()).create_conversation()
    body = await Http(chat_server, new_user()).post(USAGE, id=cid, text="hi")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
