"""The `events` feed end to end on a real server (SQLite file, the real model, model
titles on, real sockets): every kind of change arrives in commit order, another user's
feed hears none of it, and `since` after a disconnect replays exactly what was missed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.chat.events_feed import (
    DELETE,
    FEED,
    RENAME,
    SELECT,
    events,
    open_feed,
    summary,
)
from tests.integration.chat.live import Http, Server, connect, new_user, served

from llamaql.services.chat.events import title_from

pytestmark = [pytest.mark.model, pytest.mark.slow]
SHORT = {"temperature": 0.0, "maxTokens": 8}
QUESTION = "What is the capital of France?"


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[Server]:
    env = {"LLAMAQL_CONTEXT_SIZE": "512", "LLAMAQL_PARALLEL": "2"}  # model titles on
    with served(tmp_path, "events", env) as server:
        yield server


async def test_every_change_reaches_the_users_feed_in_order_and_no_one_elses(
    feed_server: Server,
) -> None:
    alice, bob = new_user(), new_user()
    http = Http(feed_server, alice)
    async with connect(feed_server, alice) as feed, connect(feed_server, bob) as other:
        op = await open_feed(feed)
        bobs = await open_feed(other)
        named = await http.create_conversation(title="Named")
        await http.data(RENAME, id=named, title="Renamed")
        untitled = await http.create_conversation()
        async with connect(feed_server, alice) as chat:
            done = (await chat.stream(await chat.send_message(untitled, QUESTION, SHORT)))[-1]
        reply = done["message"]["id"]
        first = await events(feed, op, 7)
        # The model's title arrives after the reply, whenever the engine is idle.
        titled = await feed.event(op)
        await http.data(SELECT, id=reply)
        await http.data(DELETE, id=named)
        last = await events(feed, op, 2)
        # Bob's feed skipped all of that: its next event is his own.
        his = await Http(feed_server, bob).create_conversation()
        assert summary([await other.event(bobs)]) == [("ConversationCreated", his)]
    assert summary(first) == [
        ("ConversationCreated", named),
        ("ConversationUpdated", named),
        ("ConversationCreated", untitled),
        ("ConversationUpdated", untitled),  # the first words, with the exchange
        ("ReplyQueued", untitled),
        ("ReplyStarted", untitled),
        ("ReplyFinished", untitled),
    ]
    assert {e["messageId"] for e in first[4:7]} == {reply}
    assert first[6]["status"] == "COMPLETE"
    assert summary([titled]) == [("ConversationUpdated", untitled)]
    assert titled["conversation"]["title"] not in (None, title_from(QUESTION))
    assert summary(last) == [("BranchSelected", untitled), ("ConversationDeleted", named)]
    assert last[0]["messageId"] == reply


async def test_since_after_a_disconnect_replays_exactly_what_was_missed(
    feed_server: Server,
) -> None:
    alice = new_user()
    http = Http(feed_server, alice)
    async with connect(feed_server, alice) as feed:
        op = await open_feed(feed)
        kept = await http.create_conversation(title="kept")
        [seen] = await events(feed, op, 1)
    # The socket is gone; the reply, a rename and a delete happen meanwhile.
    gone = await http.create_conversation(title="gone")
    async with connect(feed_server, alice) as chat:
        done = (await chat.stream(await chat.send_message(kept, QUESTION, SHORT)))[-1]
    await http.data(RENAME, id=kept, title="kept, renamed")
    await http.data(DELETE, id=gone)
    async with connect(feed_server, alice) as feed:
        op = await feed.subscribe(FEED, {"since": seen["cursor"]})
        missed = await events(feed, op, 6)
        latest = await http.create_conversation()
        [live] = await events(feed, op, 1)
    assert summary([seen]) == [("ConversationCreated", kept)]
    assert summary(missed) == [
        ("ConversationCreated", gone),
        ("ReplyQueued", kept),
        ("ReplyStarted", kept),
        ("ReplyFinished", kept),
        ("ConversationUpdated", kept),
        ("ConversationDeleted", gone),
    ]
    assert missed[3]["messageId"] == done["message"]["id"]
    assert summary([live]) == [("ConversationCreated", latest)]
