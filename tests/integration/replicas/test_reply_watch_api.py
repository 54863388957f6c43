"""replyStream across two real replicas on one PostgreSQL: a reply generating on A,
watched through B, gives B's watcher the sender's text; A killed mid-reply, B's watcher
gets the terminal event the recovery writes."""

from __future__ import annotations

import signal

import pytest
from tests.integration.chat.live import (
    DEFAULT_MODEL_PATH,
    LONG_OPTIONS,
    LONG_TEXT,
    Http,
    connect,
    new_user,
    streamed_text,
)
from tests.integration.replicas.conftest import Replicas

pytestmark = [
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="default model not fetched"),
]

MEDIUM = {"temperature": 0.0, "maxTokens": 60}


async def test_a_reply_on_a_watched_through_b_gives_the_same_text(replicas: Replicas) -> None:
    a, b = replicas.start("replica-a"), replicas.start("replica-b")
    user = new_user()
    cid = await Http(a, user).create_conversation()
    async with connect(a, user) as ws_a, connect(b, user) as ws_b:
        op = await ws_a.send_message(cid, LONG_TEXT, MEDIUM)
        sent = await ws_a.until(op, "TokenDelta")
        reply_id = sent[0]["assistantMessageId"]
        watch = await ws_b.reply_stream(reply_id, after=1)
        sent += await ws_a.stream(op)
        watched = await ws_b.stream(watch)
    stored = (await Http(b, user).messages(cid))[-1]
    assert stored["status"] == "COMPLETE"
    assert streamed_text(sent) == stored["text"]
    assert stored["text"][:1] + streamed_text(watched) == stored["text"]
    assert watched[-1]["__typename"] == "MessageCompleted"
    assert watched[-1]["message"]["text"] == stored["text"]
    # Another user, through B: NOT_FOUND like an unknown id.
    async with connect(b, new_user()) as theirs:
        foreign = await theirs.stream(await theirs.reply_stream(reply_id))
    assert [(e["__typename"], e["code"]) for e in foreign] == [("MessageFailed", "NOT_FOUND")]


async def test_killing_a_ends_bs_watcher_with_the_recoverys_failed(replicas: Replicas) -> None:
    a, b = replicas.start("replica-a"), replicas.start("replica-b")
    user = new_user()
    cid = await Http(a, user).create_conversation()
    async with connect(a, user) as ws_a, connect(b, user) as ws_b:
        op = await ws_a.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        sent = await ws_a.until(op, "TokenDelta")
        reply_id = sent[0]["assistantMessageId"]
        watch = await ws_b.reply_stream(reply_id)
        watched = [await ws_b.event(watch)]  # B follows it
        assert watched[0]["__typename"] == "TokenDelta"
        assert replicas.stop(a, signal.SIGKILL) == -signal.SIGKILL
        # B's heartbeat marks A's reply FAILED/interrupted; B's watcher sees that row.
        watched += await ws_b.stream(watch)
    done = watched[-1]
    assert (done["__typename"], done["code"], done["retryable"]) == (
        "MessageFailed",
        "ENGINE_ERROR",
        True,
    )
    reply = done["assistantMessage"]
    assert (reply["id"], reply["status"], reply["finishReason"]) == (
        reply_id,
        "FAILED",
        "interrupted",
    )
    stored = (await Http(b, user).messages(cid))[-1]
    assert stored["text"] == reply["text"]
    # What B's watcher was sent is a prefix of what A generated, and covers the stored text.
    assert streamed_text(watched).startswith(reply["text"])
