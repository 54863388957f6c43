"""Refused sendMessage requests over the real server: one MessageFailed, nothing written."""

from __future__ import annotations

from typing import Any

import pytest
import websockets
from tests.integration.chat.live import Http, Server, connect, new_user

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.mark.parametrize(
    ("text", "options", "code"),
    [
        ("   ", None, "BAD_USER_INPUT"),
        ("x" * 32001, None, "BAD_USER_INPUT"),
        ("Hi", {"temperature": 5.0}, "BAD_USER_INPUT"),
        ("Hi", {"maxTokens": 0}, "BAD_USER_INPUT"),
        ("Hi", {"topK": -1}, "BAD_USER_INPUT"),
    ],
)
async def test_bad_input_writes_nothing(
    chat_server: Server, text: str, options: dict[str, Any] | None, code: str
) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        events = await ws.stream(await ws.send_message(cid, text, options))
    assert [(e["__typename"], e["code"], e["assistantMessage"]) for e in events] == [
        ("MessageFailed", code, None)
    ]
    assert events[0]["reason"]
    assert await http.messages(cid) == []


async def test_another_users_conversation_is_not_found(chat_server: Server) -> None:
    owner, stranger = new_user(), new_user()
    http = Http(chat_server, owner)
    cid = await http.create_conversation()
    async with connect(chat_server, stranger) as ws:
        for target in (cid, "00000000-0000-4000-8000-000000000000", "not-a-uuid"):
            events = await ws.stream(await ws.send_message(target, "Hi", {"maxTokens": 4}))
            assert [e["__typename"] for e in events] == ["MessageFailed"]
            expected = "BAD_USER_INPUT" if target == "not-a-uuid" else "NOT_FOUND"
            assert events[0]["code"] == expected
    assert await http.messages(cid) == []


async def test_an_unidentified_socket_is_refused(chat_server: Server) -> None:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with connect(chat_server, None):
            pass
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
