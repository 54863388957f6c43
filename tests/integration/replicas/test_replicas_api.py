"""Two real `llamaql serve` replicas, each with the default model, on one PostgreSQL
database: cancel through the other replica, busy and the per-user reply limit across
replicas, a replica restarted while the other generates, and a killed replica's reply
marked once it stops beating."""

from __future__ import annotations

import asyncio
import signal

import pytest
from tests.integration.chat.live import (
    DEFAULT_MODEL_PATH,
    LONG_OPTIONS,
    LONG_TEXT,
    Http,
    connect,
    new_user,
    stored_reply,
    streamed_text,
)
from tests.integration.replicas.conftest import DEAD_AFTER_S, Replicas

pytestmark = [
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="default model not fetched"),
]

SHORT = {"temperature": 0.0, "maxTokens": 8}


async def test_cancel_through_the_other_replica(replicas: Replicas) -> None:
    a, b = replicas.start("replica-a"), replicas.start("replica-b")
    user = new_user()
    cid = await Http(a, user).create_conversation()
    async with connect(a, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        events = await ws.until(op, "TokenDelta")
        reply_id = events[0]["assistantMessageId"]

        # Another user cannot, through either replica.
        refused = await Http(b, new_user()).cancel(reply_id)
        assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND", refused
        cancelled = await Http(b, user).cancel(reply_id)
        assert cancelled == {"data": {"cancelGeneration": True}}, cancelled

        events += await ws.stream(op)
    done = events[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert (done["message"]["status"], done["message"]["finishReason"]) == (
        "CANCELLED",
        "cancelled",
    )
    assert done["message"]["text"] == streamed_text(events)
    stored = (await Http(b, user).messages(cid))[-1]
    assert (stored["id"], stored["status"], stored["text"]) == (
        reply_id,
        "CANCELLED",
        done["message"]["text"],
    )
    assert f"reply {reply_id} cancelled by a notice" in a.tail(200)


async def test_busy_across_replicas(replicas: Replicas) -> None:
    a, b = replicas.start("replica-a"), replicas.start("replica-b")
    user = new_user()
    cid = await Http(a, user).create_conversation()
    async with connect(a, user) as ws_a, connect(b, user) as ws_b:
        op = await ws_a.send_message(cid, LONG_TEXT, LONG_OPTIONS, cancel_on_close=True)
        await ws_a.until(op, "TokenDelta")

        refused = await ws_b.stream(await ws_b.send_message(cid, "Me too.", SHORT))
        assert [e["__typename"] for e in refused] == ["MessageFailed"], refused
        assert (refused[0]["code"], refused[0]["assistantMessage"]) == ("CONVERSATION_BUSY", None)

        await ws_a.complete(op)  # cancelOnClose: A's reply stops; the conversation is free
        await stored_reply(Http(b, user), cid, "CANCELLED")
        done = (await ws_b.stream(await ws_b.send_message(cid, "Say hi.", SHORT)))[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert [m["text"] for m in await Http(a, user).messages(cid) if m["role"] == "USER"] == [
        LONG_TEXT,
        "Say hi.",
    ]


async def test_one_users_reply_limit_holds_across_replicas(replicas: Replicas) -> None:
    # LLAMAQL_MAX_LIVE_REPLIES_PER_USER=1, counted in the shared database.
    a, b = replicas.start("replica-a"), replicas.start("replica-b")
    user, other = new_user(), new_user()
    running, refused_cid = [await Http(a, user).create_conversation() for _ in range(2)]
    other_cid = await Http(b, other).create_conversation()
    async with connect(a, user) as ws_a, connect(b, user) as ws_b:
        op = await ws_a.send_message(running, LONG_TEXT, LONG_OPTIONS, cancel_on_close=True)
        await ws_a.until(op, "TokenDelta")

        refused = await ws_b.stream(await ws_b.send_message(refused_cid, "Hello?", SHORT))
        assert [e["__typename"] for e in refused] == ["MessageFailed"], refused
        assert (refused[0]["code"], refused[0]["retryable"]) == ("QUEUE_FULL", True)
        assert "you already have 1 reply generating or queued" in refused[0]["reason"]
        assert await Http(b, user).messages(refused_cid) == []
        async with connect(b, other) as theirs:
            served = (await theirs.stream(await theirs.send_message(other_cid, "Hi!", SHORT)))[-1]
        assert served["__typename"] == "MessageCompleted", served

        await ws_a.complete(op)  # cancelOnClose: A's reply stops; the user may send again
        await stored_reply(Http(b, user), running, "CANCELLED")
        done = (await ws_b.stream(await ws_b.send_message(refused_cid, "Say hi.", SHORT)))[-1]
    assert done["__typename"] == "MessageCompleted", done


async def test_restarting_one_replica_spares_the_others_reply(replicas: Replicas) -> None:
    a, b = replicas.start("replica-a"), replicas.start("replica-b")
    user = new_user()
    cid = await Http(a, user).create_conversation()
    async with connect(a, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        events = await ws.until(op, "TokenDelta")

        # In threads: the stream from A goes on arriving meanwhile.
        assert await asyncio.to_thread(replicas.stop, b) in (0, -signal.SIGTERM)
        # Its start-up recovery runs before it reports healthy.
        b = await asyncio.to_thread(replicas.start, "replica-b")
        reply = (await Http(b, user).messages(cid))[-1]
        assert reply["status"] == "GENERATING", "A finished before B was back: test proves nothing"

        events += await ws.stream(op)
    done = events[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert done["message"]["status"] == "COMPLETE"
    stored = (await Http(b, user).messages(cid))[-1]
    assert (stored["status"], stored["text"]) == ("COMPLETE", done["message"]["text"])
    assert "interrupted replies" not in b.tail(200)


async def test_a_killed_replicas_reply_is_marked_by_a_later_start_up(replicas: Replicas) -> None:
    a = replicas.start("replica-a")
    user = new_user()
    cid = await Http(a, user).create_conversation()
    async with connect(a, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        events = await ws.until(op, "TokenDelta")
        while len(streamed_text(events)) < 20:  # a checkpoint's worth
            events.append(await ws.event(op))
        assert replicas.stop(a, signal.SIGKILL) == -signal.SIGKILL

    await asyncio.sleep(DEAD_AFTER_S + 1)  # its last heartbeat is now older than that
    b = replicas.start("replica-b")
    http = Http(b, user)
    user_message, reply = await http.messages(cid)
    assert (user_message["status"], user_message["text"]) == ("COMPLETE", LONG_TEXT)
    assert (reply["status"], reply["finishReason"]) == ("FAILED", "interrupted")
    assert reply["text"]
    assert streamed_text(events).startswith(reply["text"])
    assert "marked 1 interrupted replies as FAILED" in b.tail(200)

    async with connect(b, user) as ws:
        done = (await ws.stream(await ws.send_message(cid, "Hi again.", SHORT)))[-1]
    assert done["__typename"] == "MessageCompleted", done


async def test_a_live_replica_marks_the_reply_of_one_killed(replicas: Replicas) -> None:
    a, b = replicas.start("replica-a"), replicas.start("replica-b")
    user = new_user()
    cid = await Http(a, user).create_conversation()
    async with connect(a, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        await ws.until(op, "TokenDelta")
        assert replicas.stop(a, signal.SIGKILL) == -signal.SIGKILL

    # B's heartbeat finds A's reply without a beat for DEAD_AFTER_S and marks it.
    reply = await stored_reply(Http(b, user), cid, "FAILED")
    assert reply["finishReason"] == "interrupted"
    assert "replies of stopped replicas as FAILED/interrupted" in b.tail(200)


async def test_deleting_through_the_other_replica_stops_the_reply(replicas: Replicas) -> None:
    a, b = replicas.start("replica-a"), replicas.start("replica-b")
    user = new_user()
    cid = await Http(a, user).create_conversation()
    async with connect(a, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        events = await ws.until(op, "TokenDelta")
        reply_id = events[0]["assistantMessageId"]

        deleted = await Http(b, user).data(
            "mutation($id: ID!) { deleteConversation(id: $id) }", id=cid
        )
        assert deleted == {"deleteConversation": cid}

        done = (await ws.stream(op))[-1]
    assert (done["__typename"], done["code"]) == ("MessageFailed", "NOT_FOUND"), done
    # Stopped by the notice, not run to its 400 tokens.
    assert f"reply {reply_id} cancelled by a notice" in a.tail(200)
