"""Each user's share of the engine over the real server: with four of one user's replies
live (LLAMAQL_MAX_LIVE_REPLIES_PER_USER's default), detached (their sockets closed), that
user's fifth send, regenerate or edit, on any socket, is QUEUE_FULL for their own limit
and writes nothing, while another user still gets a reply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.chat.live import (
    LONG_OPTIONS,
    LONG_TEXT,
    Http,
    Server,
    connect,
    new_user,
    served,
    stored_reply,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

SHORT = {"temperature": 0.0, "maxTokens": 8}
LIMIT_REASON = "you already have 4 replies generating or queued (the most per user)"


@pytest.fixture(scope="module")
def limit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Room in the queue for a user's four replies (the default limit), so the refusal
    is the user's limit, not the server's queue."""
    env = {
        "LLAMAQL_CONTEXT_SIZE": "512",
        "LLAMAQL_PARALLEL": "2",
        "LLAMAQL_QUEUE_SIZE": "8",
        "LLAMAQL_AUTO_TITLE": "false",
    }
    with served(tmp_path_factory.mktemp("limit-server"), "limit", env) as server:
        yield server


def assert_refused_for_the_limit(events: list[dict[str, Any]]) -> None:
    assert [e["__typename"] for e in events] == ["MessageFailed"], events
    failed = events[0]
    assert (failed["code"], failed["retryable"], failed["assistantMessage"]) == (
        "QUEUE_FULL",
        True,
        None,
    )
    assert LIMIT_REASON in failed["reason"]


async def test_a_user_at_the_limit_is_refused_and_another_user_is_served(
    limit_server: Server,
) -> None:
    user, other = new_user(), new_user()
    http = Http(limit_server, user)
    answered, refused_cid = [await http.create_conversation() for _ in range(2)]
    async with connect(limit_server, user) as ws:
        done = (await ws.stream(await ws.send_message(answered, "Say hi.", SHORT)))[-1]
        question_id, answer_id = done["message"]["parentId"], done["message"]["id"]
    before = await http.messages(answered)

    running = [await http.create_conversation() for _ in range(4)]
    reply_ids = []
    async with connect(limit_server, user) as ws:
        for cid in running:
            op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
            reply_ids.append((await ws.event(op))["assistantMessageId"])
    # The socket is closed: the four replies run on, and still count.
    assert [(await http.messages(cid))[-1]["status"] for cid in running] == ["GENERATING"] * 4

    async with connect(limit_server, user) as second:
        for started in (
            await second.send_message(refused_cid, "Hello?", SHORT),
            await second.regenerate(answer_id, SHORT),
            await second.edit_message(question_id, "Instead?", SHORT),
        ):
            assert_refused_for_the_limit(await second.stream(started))
    assert await http.messages(refused_cid) == []
    assert await http.messages(answered) == before

    # Another user is not held back by this user's limit.
    other_http = Http(limit_server, other)
    other_cid = await other_http.create_conversation()
    async with connect(limit_server, other) as theirs:
        got = (await theirs.stream(await theirs.send_message(other_cid, "Hi!", SHORT)))[-1]
    assert got["__typename"] == "MessageCompleted"
    assert got["message"]["status"] == "COMPLETE"

    # Once one of the user's replies ends, the user may send again.
    await http.cancel(reply_ids[0])
    await stored_reply(http, running[0], "CANCELLED")
    async with connect(limit_server, user) as ws:
        op = await ws.send_message(refused_cid, "Hello?", SHORT)
        assert (await ws.event(op))["__typename"] == "MessageQueued"  # admitted
        for reply_id in reply_ids[1:]:  # (the long ones would hold it in the queue)
            await http.cancel(reply_id)
        again = await ws.stream(op)
    assert again[-1]["__typename"] == "MessageCompleted"
