"""Each user's share of the engine over the real server: with one user's reply live (the
most per user: half of LLAMAQL_PARALLEL=2), that user's next send, regenerate or edit,
on any socket, is QUEUE_FULL for their own limit and writes nothing, while another user
still gets a reply."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.chat.live import (
    LONG_OPTIONS,
    LONG_TEXT,
    Http,
    Server,
    connect,
    new_user,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

SHORT = {"temperature": 0.0, "maxTokens": 8}
LIMIT_REASON = "you already have 1 reply generating or queued (the most per user)"


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
    chat_server: Server,
) -> None:
    user, other = new_user(), new_user()
    http = Http(chat_server, user)
    answered, running, refused_cid = [await http.create_conversation() for _ in range(3)]
    async with connect(chat_server, user) as ws:
        done = (await ws.stream(await ws.send_message(answered, "Say hi.", SHORT)))[-1]
        question_id, answer_id = done["message"]["parentId"], done["message"]["id"]
        before = await http.messages(answered)

    async with connect(chat_server, user) as ws, connect(chat_server, user) as second:
        op = await ws.send_message(running, LONG_TEXT, LONG_OPTIONS)
        reply_id = (await ws.until(op, "TokenDelta"))[0]["assistantMessageId"]

        # Another socket of the same user: every way to start a reply is refused.
        for started in (
            await second.send_message(refused_cid, "Hello?", SHORT),
            await second.regenerate(answer_id, SHORT),
            await second.edit_message(question_id, "Instead?", SHORT),
        ):
            assert_refused_for_the_limit(await second.stream(started))
        assert await http.messages(refused_cid) == []
        assert await http.messages(answered) == before

        # Another user is not held back by this user's limit.
        other_http = Http(chat_server, other)
        other_cid = await other_http.create_conversation()
        async with connect(chat_server, other) as theirs:
            served = (await theirs.stream(await theirs.send_message(other_cid, "Hi!", SHORT)))[-1]
        assert served["__typename"] == "MessageCompleted"
        assert served["message"]["status"] == "COMPLETE"

        # Once the user's reply ends, the user may send again.
        await http.cancel(reply_id)
        assert (await ws.stream(op))[-1]["message"]["status"] == "CANCELLED"
        again = await second.stream(await second.send_message(refused_cid, "Hello?", SHORT))
        assert again[-1]["__typename"] == "MessageCompleted"
