"""The `events` feed across two real replicas on one PostgreSQL, each with the default
model: changes made through either replica reach feeds on both, in the same commit
order, and another user's feed on either replica hears none of them."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.chat.events_feed import DELETE, RENAME, SELECT, events, open_feed, summary
from tests.integration.chat.live import DEFAULT_MODEL_PATH, Http, connect, new_user
from tests.integration.replicas.conftest import Replicas
from tests.integration.replicas.test_replicas_api import SHORT

from llamaql.services.events.cursors import decode_event_cursor

pytestmark = [
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="default model not fetched"),
]


@pytest.fixture
def two(pg_url: str, tmp_path: Path) -> Iterator[Replicas]:
    made = Replicas(pg_url, tmp_path)
    yield made
    for server in list(made.running):
        made.stop(server, signal.SIGKILL)


async def test_changes_through_either_replica_reach_feeds_on_both_in_order(
    two: Replicas,
) -> None:
    a, b = two.start("replica-a"), two.start("replica-b")
    alice, bob = new_user(), new_user()
    on_a, on_b = Http(a, alice), Http(b, alice)
    async with (
        connect(a, alice) as feed_a,
        connect(b, alice) as feed_b,
        connect(b, bob) as feed_bob,
    ):
        op_a, op_b, op_bob = (
            await open_feed(feed_a),
            await open_feed(feed_b),
            await open_feed(feed_bob),
        )
        first = await on_a.create_conversation(title="first")
        second = await on_b.create_conversation(title="second")
        await on_a.data(RENAME, id=second, title="second, renamed")
        async with connect(b, alice) as chat:
            done = (await chat.stream(await chat.send_message(first, "Hello", SHORT)))[-1]
        await on_a.data(SELECT, id=done["message"]["id"])
        await on_b.data(DELETE, id=second)
        seen_a = await events(feed_a, op_a, 8)
        seen_b = await events(feed_b, op_b, 8)
        his = await Http(a, bob).create_conversation()
        [bobs] = await events(feed_bob, op_bob, 1)
    expected = [
        ("ConversationCreated", first),
        ("ConversationCreated", second),
        ("ConversationUpdated", second),
        ("ReplyQueued", first),
        ("ReplyStarted", first),
        ("ReplyFinished", first),
        ("BranchSelected", first),
        ("ConversationDeleted", second),
    ]
    assert summary(seen_a) == summary(seen_b) == expected
    assert [e["cursor"] for e in seen_a] == [e["cursor"] for e in seen_b]
    keys = [decode_event_cursor(e["cursor"]).key for e in seen_a]
    assert keys == sorted(keys)
    assert summary([bobs]) == [("ConversationCreated", his)]
