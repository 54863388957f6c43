"""Stopping replies over the real server: closing the socket or unsubscribing a stream
that asked for it (cancelOnClose), cancelGeneration, and the busy/queue-full refusals a
running reply causes. (Closing a stream that did not ask leaves the reply running:
test_detached_api.)"""

from __future__ import annotations

import contextlib

import pytest
from tests.integration.chat.gqlws import Socket
from tests.integration.chat.live import (
    LONG_OPTIONS,
    LONG_TEXT,
    Http,
    Server,
    connect,
    new_user,
    stored_reply,
    streamed_text,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

SHORT = {"temperature": 0.0, "maxTokens": 8}


async def test_closing_the_socket_with_cancel_on_close_keeps_the_partial_reply(
    chat_server: Server,
) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS, cancel_on_close=True)
        events = await ws.until(op, "TokenDelta")
        events += [await ws.event(op), await ws.event(op)]
    # The socket is closed mid-stream.
    reply = await stored_reply(http, cid, "CANCELLED")
    assert reply["finishReason"] == "cancelled"
    assert reply["text"].startswith(streamed_text(events))
    assert len(reply["text"]) < 600  # far from the 400 tokens it was asked for

    # The worker is free at once: the next request on the conversation completes.
    async with connect(chat_server, user) as ws:
        done = (await ws.stream(await ws.send_message(cid, "Say hi.", SHORT)))[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert done["message"]["status"] == "COMPLETE"


async def test_unsubscribing_with_cancel_on_close_keeps_the_partial_reply(
    chat_server: Server,
) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS, cancel_on_close=True)
        events = await ws.until(op, "TokenDelta")
        await ws.complete(op)
        reply = await stored_reply(http, cid, "CANCELLED")
        assert reply["text"].startswith(streamed_text(events))
        # The same socket goes on working.
        done = (await ws.stream(await ws.send_message(cid, "Say hi.", SHORT)))[-1]
        assert done["__typename"] == "MessageCompleted", done


async def test_cancel_generation_by_the_owner_only(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        events = await ws.until(op, "TokenDelta")
        reply_id = events[0]["assistantMessageId"]

        stranger = await Http(chat_server, new_user()).cancel(reply_id)
        assert [e["extensions"]["code"] for e in stranger["errors"]] == ["NOT_FOUND"]
        assert await http.data(
            "mutation($id: ID!) { cancelGeneration(messageId: $id) }", id=reply_id
        ) == {"cancelGeneration": True}

        rest = await ws.stream(op)
    done = rest[-1]
    assert done["__typename"] == "MessageCompleted", done
    message = done["message"]
    assert (message["id"], message["status"], message["finishReason"]) == (
        reply_id,
        "CANCELLED",
        "cancelled",
    )
    assert message["text"] == streamed_text(events + rest)
    assert (await http.messages(cid))[-1]["text"] == message["text"]
    again = await http.data("mutation($id: ID!) { cancelGeneration(messageId: $id) }", id=reply_id)
    assert again == {"cancelGeneration": False}


async def test_a_second_message_while_replying_is_busy(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws, connect(chat_server, user) as other:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        reply_id = (await ws.until(op, "TokenDelta"))[0]["assistantMessageId"]
        refused = await other.stream(await other.send_message(cid, "Me too", SHORT))
        assert [e["__typename"] for e in refused] == ["MessageFailed"]
        assert (refused[0]["code"], refused[0]["retryable"]) == ("CONVERSATION_BUSY", True)
        assert refused[0]["assistantMessage"] is None
        await http.cancel(reply_id)
        assert (await ws.stream(op))[-1]["__typename"] == "MessageCompleted"
    stored = await http.messages(cid)
    assert [(m["role"], m["status"]) for m in stored] == [
        ("USER", "COMPLETE"),
        ("ASSISTANT", "CANCELLED"),
    ]
    assert stored[0]["text"] == LONG_TEXT


async def test_a_full_queue_is_refused_and_writes_nothing(chat_server: Server) -> None:
    # The server decodes two replies together and lets one more wait. Four users, so the
    # refusal is the server's queue, not one user's live-reply limit.
    https = [Http(chat_server, new_user()) for _ in range(4)]
    first, second, waiting, refused_cid = [await http.create_conversation() for http in https]
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(connect(chat_server, h.user)) for h in https]
        running: list[tuple[Socket, Http, str, str]] = []
        for ws, http, cid in zip(sockets, https, (first, second), strict=False):
            op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
            reply_id = (await ws.until(op, "TokenDelta"))[0]["assistantMessageId"]
            running.append((ws, http, op, reply_id))
        op_waiting = await sockets[2].send_message(waiting, LONG_TEXT, LONG_OPTIONS)
        queued = await sockets[2].event(op_waiting)
        assert queued["__typename"] == "MessageQueued"
        assert queued["position"] == 1  # next in line for a sequence

        refused = await sockets[3].stream(
            await sockets[3].send_message(refused_cid, "Hello?", SHORT)
        )
        assert [e["__typename"] for e in refused] == ["MessageFailed"]
        assert (refused[0]["code"], refused[0]["retryable"]) == ("QUEUE_FULL", True)
        assert "busy with other replies" in refused[0]["reason"]  # the server's, not the user's
        assert await https[3].messages(refused_cid) == []

        # A request cancelled while queued never reaches the model: empty, CANCELLED.
        await https[2].cancel(queued["assistantMessageId"])
        waited = (await sockets[2].stream(op_waiting))[-1]
        assert (waited["message"]["status"], waited["message"]["text"]) == ("CANCELLED", "")
        for ws, http, op, reply_id in running:
            await http.cancel(reply_id)
            assert (await ws.stream(op))[-1]["message"]["status"] == "CANCELLED"


async def test_deleting_the_conversation_stops_its_reply(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        before = await ws.until(op, "TokenDelta")
        deleted = await http.post("mutation($id: ID!) { deleteConversation(id: $id) }", id=cid)
        assert deleted["data"] == {"deleteConversation": cid}
        after = await ws.stream(op)
    assert after[-1]["__typename"] == "MessageFailed"
    assert after[-1]["code"] == "NOT_FOUND"
    # Stopped within a step or two, not run on to its 400 tokens (about 1,500 characters).
    assert len(streamed_text(after)) < 200, streamed_text(before + after)
