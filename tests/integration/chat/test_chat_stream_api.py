"""sendMessage end to end: real model, real WebSocket, real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest
from tests.integration.chat.conftest import CONTEXT_SIZE
from tests.integration.chat.live import Http, Server, connect, new_user, streamed_text

pytestmark = [pytest.mark.model, pytest.mark.slow]

GREEDY = {"temperature": 0.0, "maxTokens": 24}


async def test_streamed_reply_is_stored_and_history_is_sent(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        first = await ws.stream(
            await ws.send_message(cid, "What is the capital of France?", GREEDY)
        )
        second = await ws.stream(await ws.send_message(cid, "And of Italy?", GREEDY))

    queued, *_, done = first
    assert queued["__typename"] == "MessageQueued"
    assert queued["userMessage"]["text"] == "What is the capital of France?"
    assert (queued["userMessage"]["role"], queued["userMessage"]["status"]) == ("USER", "COMPLETE")
    assert done["__typename"] == "MessageCompleted", done
    reply = done["message"]
    assert reply["id"] == queued["assistantMessageId"]
    assert reply["status"] == "COMPLETE"
    assert reply["finishReason"] in {"stop", "length"}
    assert reply["text"]
    assert streamed_text(first) == reply["text"]
    assert all(e["messageId"] == reply["id"] for e in first if e["__typename"] == "TokenDelta")

    stored = await http.messages(cid)
    assert [(m["role"], m["status"]) for m in stored] == [
        ("USER", "COMPLETE"),
        ("ASSISTANT", "COMPLETE"),
        ("USER", "COMPLETE"),
        ("ASSISTANT", "COMPLETE"),
    ]
    assert stored[1]["text"] == reply["text"]
    assert stored[3]["text"] == streamed_text(second) == second[-1]["message"]["text"]
    # The second prompt carries the first exchange.
    first_prompt = reply["usage"]["promptTokens"]
    assert second[-1]["message"]["usage"]["promptTokens"] > first_prompt + 5
    title = await http.data("query($id: ID!) { conversation(id: $id) { title } }", id=cid)
    assert title["conversation"]["title"] == "What is the capital of France?"


async def test_same_seed_gives_the_same_reply(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    options = {"temperature": 0.9, "seed": 1234, "maxTokens": 16}
    texts = []
    async with connect(chat_server, user) as ws:
        for _ in range(2):
            cid = await http.create_conversation()
            events = await ws.stream(await ws.send_message(cid, "Tell me a fun fact.", options))
            assert events[-1]["__typename"] == "MessageCompleted", events[-1]
            texts.append(events[-1]["message"]["text"])
    assert texts[0] == texts[1]
    assert texts[0]


async def test_long_conversation_on_a_small_context_drops_old_turns(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    filler = " ".join(f"item{n}" for n in range(60))
    async with connect(chat_server, user) as ws:
        for turn in range(6):
            events = await ws.stream(
                await ws.send_message(cid, f"Turn {turn}: remember {filler}", {"maxTokens": 8})
            )
            done = events[-1]
            assert done["__typename"] == "MessageCompleted", done
            assert done["message"]["usage"]["promptTokens"] < CONTEXT_SIZE
    with sqlite3.connect(chat_server.database) as db:
        (dropped,) = db.execute(
            "SELECT dropped_messages FROM messages WHERE conversation_id = ? ORDER BY seq DESC",
            (cid.replace("-", ""),),
        ).fetchone()
    assert dropped > 0
    assert len(await http.messages(cid)) == 12


async def test_a_single_oversized_message_is_context_overflow(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    huge = " ".join(f"word{n}" for n in range(CONTEXT_SIZE))
    async with connect(chat_server, user) as ws:
        events = await ws.stream(await ws.send_message(cid, huge, {"maxTokens": 8}))
    assert [e["__typename"] for e in events] == ["MessageFailed"]
    assert events[0]["code"] == "CONTEXT_OVERFLOW"
    assert events[0]["assistantMessage"] is None
    assert await http.messages(cid) == []
