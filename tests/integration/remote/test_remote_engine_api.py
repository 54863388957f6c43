"""A remote llamaql end to end: sendMessage over a real WebSocket, replies streamed from
llama-cpp-python's OpenAI-compatible server on the default model, saved to SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from tests.integration.chat.live import (
    LONG_OPTIONS,
    LONG_TEXT,
    Http,
    Server,
    connect,
    new_user,
    streamed_text,
)
from tests.integration.remote.conftest import CONTEXT_SIZE
from tests.integration.remote.upstream import Upstream

from llamaql.config import DEFAULT_SYSTEM_PROMPT

pytestmark = [pytest.mark.model, pytest.mark.slow]

MODEL = """{ model { name backend device contextSize chatTemplate engine engineServer } }"""
USAGE = """query($id: ID!, $text: String) {
  contextUsage(conversationId: $id, text: $text) {
    contextSize promptTokens replyTokens droppedMessages fits
  }
}"""
QUESTION = "What is the capital of France?"
GREEDY = {"temperature": 0.0, "maxTokens": 24}


async def test_a_reply_streams_from_the_remote_engine_and_is_saved(remote: Server) -> None:
    user = new_user()
    http = Http(remote, user)
    cid = await http.create_conversation()
    async with connect(remote, user) as ws:
        events = await ws.stream(await ws.send_message(cid, QUESTION, GREEDY))
    assert events[0]["__typename"] == "MessageQueued"
    done = events[-1]
    assert done["__typename"] == "MessageCompleted", done
    reply = done["message"]
    assert reply["status"] == "COMPLETE"
    assert reply["finishReason"] in ("stop", "length")
    assert "Paris" in reply["text"]
    assert streamed_text(events) == reply["text"]
    assert reply["usage"]["promptTokens"] > 0
    assert 0 < reply["usage"]["completionTokens"] <= GREEDY["maxTokens"]
    stored = await http.messages(cid)
    assert [(m["role"], m["status"], m["text"]) for m in stored] == [
        ("USER", "COMPLETE", QUESTION),
        ("ASSISTANT", "COMPLETE", reply["text"]),
    ]


async def test_the_model_query_names_the_remote_engine(remote: Server) -> None:
    info = (await Http(remote, new_user()).data(MODEL))["model"]
    assert info == {
        # llama_cpp.server lists its model under the path it loaded.
        "name": info["name"],
        "backend": "remote",
        "device": "llama-cpp-python",
        "contextSize": CONTEXT_SIZE,
        "chatTemplate": True,
        "engine": "remote",
        "engineServer": "llama-cpp-python",
    }
    assert info["name"].endswith(".gguf")


async def test_metrics_read_the_remote_engines_load(remote: Server) -> None:
    async with httpx.AsyncClient() as client:
        page = (await client.get(f"http://127.0.0.1:{remote.port}/metrics")).text
    assert "llamaql_engine_up 1.0" in page
    assert "llamaql_queue_depth 0.0" in page


async def test_context_usage_counts_what_the_server_evaluates(
    remote: Server, upstream: Upstream
) -> None:
    user = new_user()
    http = Http(remote, user)
    cid = await http.create_conversation()
    usage = (await http.data(USAGE, id=cid, text=QUESTION))["contextUsage"]
    assert usage["fits"] is True
    assert usage["contextSize"] == CONTEXT_SIZE
    # The server's own count of the same prompt, rendered with the model's template.
    async with httpx.AsyncClient(timeout=120) as client:
        answer = await client.post(
            f"{upstream.api_url}/chat/completions",
            headers=upstream.auth(),
            json={
                "messages": [
                    {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                    {"role": "user", "content": QUESTION},
                ],
                "max_tokens": 1,
            },
        )
    assert answer.status_code == 200, answer.text
    assert usage["promptTokens"] == answer.json()["usage"]["prompt_tokens"]
    async with connect(remote, user) as ws:
        done = (await ws.stream(await ws.send_message(cid, QUESTION, GREEDY)))[-1]
        assert done["message"]["usage"]["promptTokens"] == usage["promptTokens"]
        follow_up = "And of Italy?"
        second = (await http.data(USAGE, id=cid, text=follow_up))["contextUsage"]
        assert second["promptTokens"] > usage["promptTokens"]
        done = (await ws.stream(await ws.send_message(cid, follow_up, GREEDY)))[-1]
    assert done["message"]["usage"]["promptTokens"] == second["promptTokens"]


async def test_the_oldest_turns_are_dropped_to_fit(remote: Server) -> None:
    user = new_user()
    http = Http(remote, user)
    # The conversation's own options, so contextUsage and the sends keep the same room.
    cid = await http.create_conversation(options={"temperature": 0.0, "maxTokens": 160})
    long_question = "Please remember these words: " + "apple banana cherry " * 60
    async with connect(remote, user) as ws:
        first = (await ws.stream(await ws.send_message(cid, long_question)))[-1]
        assert first["__typename"] == "MessageCompleted", first
        text = "Name a colour. " + "red green blue " * 25
        usage = (await http.data(USAGE, id=cid, text=text))["contextUsage"]
        assert usage["droppedMessages"] == 2  # the long question and its reply
        assert usage["fits"] is True
        assert usage["replyTokens"] == 160
        done = (await ws.stream(await ws.send_message(cid, text)))[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert done["message"]["usage"]["promptTokens"] == usage["promptTokens"]


async def test_a_message_that_cannot_fit_is_context_overflow(remote: Server) -> None:
    user = new_user()
    http = Http(remote, user)
    cid = await http.create_conversation()
    text = "word " * 600
    usage = (await http.data(USAGE, id=cid, text=text))["contextUsage"]
    assert usage["fits"] is False
    assert usage["promptTokens"] > CONTEXT_SIZE - usage["replyTokens"]
    async with connect(remote, user) as ws:
        events = await ws.stream(await ws.send_message(cid, text))
    assert [e["__typename"] for e in events] == ["MessageFailed"]
    assert events[0]["code"] == "CONTEXT_OVERFLOW"
    assert events[0]["assistantMessage"] is None
    assert await http.messages(cid) == []


async def _first_text(ws: Any, op: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = await ws.until(op, "TokenDelta")
    assert events[-1]["__typename"] == "TokenDelta", events
    return events


async def test_cancel_keeps_the_text_and_closes_the_upstream_stream(
    remote: Server, upstream: Upstream
) -> None:
    user = new_user()
    http = Http(remote, user)
    cid = await http.create_conversation()
    disconnects = upstream.tail(10_000).count("isconnected")
    async with connect(remote, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        events = await _first_text(ws, op)
        reply_id = events[0]["assistantMessageId"]
        assert (await http.cancel(reply_id))["data"] == {"cancelGeneration": True}
        events += await ws.stream(op)
    done = events[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert done["message"]["status"] == "CANCELLED"
    assert done["message"]["text"] == streamed_text(events)
    assert done["message"]["usage"]["completionTokens"] < LONG_OPTIONS["maxTokens"]
    # The upstream server notices its client went away (it checks once per token).
    for _ in range(600):
        if upstream.tail(10_000).count("isconnected") > disconnects:
            break
        await asyncio.sleep(0.1)
    assert upstream.tail(10_000).count("isconnected") > disconnects, upstream.tail()
    stored = await http.messages(cid)
    assert stored[-1]["status"] == "CANCELLED"
    assert stored[-1]["text"] == done["message"]["text"]
