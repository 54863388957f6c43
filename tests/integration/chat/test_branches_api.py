"""Conversation branches over the real server and model: regenerate and editMessage over
real WebSockets, selectBranch and the tree fields over HTTP."""

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

SHORT = {"temperature": 0.0, "maxTokens": 6}
TREE = """
query Tree($id: ID!) {
  conversation(id: $id) {
    messages(first: 100) {
      totalCount
      edges { node { id role text status parentId siblingIds usage { promptTokens } } }
    }
  }
}
"""
SELECT = """
mutation Select($id: ID!) {
  selectBranch(messageId: $id) { id messages(first: 100) { edges { node { id } } } }
}
"""


async def branch(http: Http, cid: str) -> list[dict[str, Any]]:
    """The conversation's current branch, checking totalCount agrees with it."""
    messages = (await http.data(TREE, id=cid))["conversation"]["messages"]
    nodes = [edge["node"] for edge in messages["edges"]]
    assert messages["totalCount"] == len(nodes)
    return nodes


async def completed(events: list[dict[str, Any]]) -> dict[str, Any]:
    queued, done = events[0], events[-1]
    assert queued["__typename"] == "MessageQueued", events
    assert done["__typename"] == "MessageCompleted", events
    message: dict[str, Any] = done["message"]
    assert message["id"] == queued["assistantMessageId"]
    return {**message, "question": queued["userMessage"]}


async def test_regenerating_twice_gives_three_siblings_and_select_branch_flips_messages(
    chat_server: Server,
) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        first = await completed(await ws.stream(await ws.send_message(cid, "Hi!", SHORT)))
        replies = [first]
        for seed in (1, 2):
            options = {"temperature": 0.9, "seed": seed, "maxTokens": 6}
            replies.append(
                await completed(await ws.stream(await ws.regenerate(first["id"], options)))
            )

    question = first["question"]
    assert all(r["question"]["id"] == question["id"] for r in replies)
    assert all(r["parentId"] == question["id"] for r in replies)
    ids = [r["id"] for r in replies]
    assert len(set(ids)) == 3
    now = await branch(http, cid)
    assert [m["id"] for m in now] == [question["id"], ids[2]]
    assert now[1]["siblingIds"] == ids
    assert now[0]["siblingIds"] == [question["id"]]
    assert now[0]["parentId"] is None

    chosen = (await http.data(SELECT, id=ids[0]))["selectBranch"]
    assert chosen["id"] == cid
    assert [e["node"]["id"] for e in chosen["messages"]["edges"]] == [question["id"], ids[0]]
    assert [m["id"] for m in await branch(http, cid)] == [question["id"], ids[0]]

    # Selecting the question goes down to the newest reply under it.
    await http.data(SELECT, id=question["id"])
    assert [m["id"] for m in await branch(http, cid)] == [question["id"], ids[2]]


async def test_an_edit_prompts_from_its_own_branch_only(chat_server: Server) -> None:
    user = new_user()
    http = Http(chat_server, user)
    long_question = "Please remember these words: " + "apple banana cherry " * 20
    cid = await http.create_conversation()
    fresh = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        old = await completed(await ws.stream(await ws.send_message(cid, long_question, SHORT)))
        await completed(await ws.stream(await ws.send_message(cid, "And then?", SHORT)))
        edited = await completed(
            await ws.stream(await ws.edit_message(old["question"]["id"], "Say hi.", SHORT))
        )
        # The same words as the first message of a new conversation: the same prompt.
        alone = await completed(await ws.stream(await ws.send_message(fresh, "Say hi.", SHORT)))

    assert edited["question"]["text"] == "Say hi."
    assert edited["question"]["parentId"] is None
    assert edited["question"]["id"] != old["question"]["id"]
    assert edited["usage"]["promptTokens"] == alone["usage"]["promptTokens"]
    assert edited["usage"]["promptTokens"] < old["usage"]["promptTokens"]
    now = await branch(http, cid)
    assert [(m["role"], m["text"]) for m in now] == [
        ("USER", "Say hi."),
        ("ASSISTANT", edited["text"]),
    ]
    assert now[0]["siblingIds"] == [old["question"]["id"], edited["question"]["id"]]


async def test_while_a_regenerated_reply_runs_everything_else_is_busy_then_cancel(
    chat_server: Server,
) -> None:
    user = new_user()
    http = Http(chat_server, user)
    cid = await http.create_conversation()
    async with connect(chat_server, user) as ws:
        first = await completed(await ws.stream(await ws.send_message(cid, LONG_TEXT, SHORT)))
        question = first["question"]
        running = await ws.regenerate(first["id"], LONG_OPTIONS)
        started = await ws.until(running, "TokenDelta")
        assert started[-1]["__typename"] == "TokenDelta", started
        reply_id = started[0]["assistantMessageId"]
        before = await branch(http, cid)

        for op in (
            await ws.regenerate(first["id"], SHORT),
            await ws.edit_message(question["id"], "Something else", SHORT),
            await ws.send_message(cid, "Me too", SHORT),
        ):
            [failed] = await ws.stream(op)
            assert (failed["code"], failed["retryable"]) == ("CONVERSATION_BUSY", True)
            assert failed["assistantMessage"] is None
        body = await http.post(SELECT, id=first["id"])
        assert body["errors"][0]["extensions"]["code"] == "CONVERSATION_BUSY"
        assert [m["id"] for m in await branch(http, cid)] == [m["id"] for m in before]

        assert (await http.cancel(reply_id))["data"]["cancelGeneration"] is True
        done = (await ws.stream(running))[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert done["message"]["status"] == "CANCELLED"
    now = await branch(http, cid)
    assert [m["id"] for m in now] == [question["id"], reply_id]
    assert now[1]["siblingIds"] == [first["id"], reply_id]


async def test_refusals_write_nothing_and_another_users_ids_are_not_found(
    chat_server: Server,
) -> None:
    owner, stranger = new_user(), new_user()
    http = Http(chat_server, owner)
    cid = await http.create_conversation()
    async with connect(chat_server, owner) as ws:
        first = await completed(await ws.stream(await ws.send_message(cid, "Hi!", SHORT)))
    question_id, reply_id = first["question"]["id"], first["id"]
    before = await branch(http, cid)

    refusals: list[tuple[str, str, dict[str, Any], str]] = [
        (stranger, "regenerate", {"message_id": reply_id}, "NOT_FOUND"),
        (stranger, "edit_message", {"message_id": question_id, "text": "mine"}, "NOT_FOUND"),
        (stranger, "regenerate", {"message_id": "not-a-uuid"}, "BAD_USER_INPUT"),
        (owner, "regenerate", {"message_id": question_id}, "BAD_USER_INPUT"),  # not a reply
        (owner, "edit_message", {"message_id": reply_id, "text": "x"}, "BAD_USER_INPUT"),
        (owner, "edit_message", {"message_id": question_id, "text": "  "}, "BAD_USER_INPUT"),
        (owner, "edit_message", {"message_id": question_id, "text": "x" * 32001}, "BAD_USER_INPUT"),
        (
            owner,
            "regenerate",
            {"message_id": reply_id, "options": {"temperature": 5.0}},
            "BAD_USER_INPUT",
        ),
    ]
    for user, operation, arguments, code in refusals:
        async with connect(chat_server, user) as ws:
            events = await ws.stream(await getattr(ws, operation)(**arguments))
        assert [(e["__typename"], e["code"]) for e in events] == [("MessageFailed", code)]
        assert events[0]["assistantMessage"] is None

    strangers = Http(chat_server, stranger)
    body = await strangers.post(SELECT, id=reply_id)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await strangers.post(TREE, id=cid))["data"]["conversation"] is None
    assert await branch(http, cid) == before
