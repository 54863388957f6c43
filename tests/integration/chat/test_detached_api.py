"""Replies outlive their streams, over the real server and model: a cut socket leaves the
reply running to COMPLETE, replyStream follows it from a new socket (the rest exactly),
watchers and the sender agree, cancelGeneration stops a detached reply, and another
user's replyStream is NOT_FOUND."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.chat.live import (
    LONG_TEXT,
    Http,
    Server,
    connect,
    new_user,
    stored_reply,
    streamed_text,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

# Long enough to cut mid-way, short enough to run to its end quickly.
MEDIUM = {"temperature": 0.0, "maxTokens": 60}


async def test_a_cut_socket_leaves_the_reply_running_and_replystream_gives_the_rest(
    chat_server: Server,
) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, MEDIUM)
        events = await ws.until(op, "TokenDelta")
        reply_id = events[0]["assistantMessageId"]
        shown = streamed_text(events)
    # The socket is closed mid-reply: the reply runs on to its end.
    reply = await stored_reply(http, cid, "COMPLETE")
    assert reply["finishReason"] == "length"
    assert reply["text"].startswith(shown)
    assert len(reply["text"]) > len(shown)

    async with connect(chat_server, user) as ws:
        rest = await ws.stream(await ws.reply_stream(reply_id, after=len(shown)))
    assert [e["__typename"] for e in rest] == ["TokenDelta", "MessageCompleted"]
    assert shown + streamed_text(rest) == reply["text"]
    assert rest[-1]["message"]["text"] == reply["text"]


async def test_two_watchers_and_the_sender_get_the_same_text(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws, connect(chat_server, user) as other:
        op = await ws.send_message(cid, LONG_TEXT, MEDIUM)
        sent = await ws.until(op, "TokenDelta")
        reply_id = sent[0]["assistantMessageId"]
        first = await ws.reply_stream(reply_id)
        second = await other.reply_stream(reply_id)
        sent += await ws.stream(op)
        watched = [await ws.stream(first), await other.stream(second)]
    saved = (await http.messages(cid))[-1]
    assert saved["status"] == "COMPLETE"
    for events in (sent, *watched):
        assert streamed_text(events) == saved["text"]
        assert events[-1]["message"]["text"] == saved["text"]


async def test_cancel_generation_stops_a_detached_reply(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, {"temperature": 0.0, "maxTokens": 400})
        reply_id = (await ws.until(op, "TokenDelta"))[0]["assistantMessageId"]
    assert (await http.messages(cid))[-1]["status"] == "GENERATING"  # it runs on
    assert await http.data(
        "mutation($id: ID!) { cancelGeneration(messageId: $id) }", id=reply_id
    ) == {"cancelGeneration": True}
    reply = await stored_reply(http, cid, "CANCELLED")
    assert 0 < len(reply["text"]) < 600
    async with connect(chat_server, user) as ws:
        ended = await ws.stream(await ws.reply_stream(reply_id))
    assert streamed_text(ended) == reply["text"]
    assert ended[-1]["message"]["status"] == "CANCELLED"


async def test_another_users_replystream_is_not_found(chat_server: Server) -> None:
    user, stranger = new_user(), new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        done = (await ws.stream(await ws.send_message(cid, "Say hi.", MEDIUM)))[-1]
    reply_id = done["message"]["id"]

    def refusal(events: list[dict[str, Any]]) -> tuple[Any, ...]:
        assert len(events) == 1, events
        failed = events[0]
        return failed["__typename"], failed["code"], failed["assistantMessage"]

    unknown_id = new_user()  # any unused UUID
    async with connect(chat_server, stranger) as theirs:
        foreign = await theirs.stream(await theirs.reply_stream(reply_id))
        unknown = await theirs.stream(await theirs.reply_stream(unknown_id))
    assert refusal(foreign) == refusal(unknown) == ("MessageFailed", "NOT_FOUND", None)
    # Word for word what an unknown id gets: nothing says the message exists.
    assert foreign[0]["reason"] == f"message {reply_id} not found"
    assert unknown[0]["reason"] == f"message {unknown_id} not found"
    async with connect(chat_server, user) as ws:
        beyond = await ws.stream(await ws.reply_stream(reply_id, after=10_000))
        ended = await ws.stream(await ws.reply_stream(reply_id, after=0))
    assert refusal(beyond) == ("MessageFailed", "BAD_USER_INPUT", None)
    assert streamed_text(ended) == done["message"]["text"]
    assert ended[-1] == done
