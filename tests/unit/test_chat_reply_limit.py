"""Each user's share of the engine (fakes): at most LLAMAQL_MAX_LIVE_REPLIES_PER_USER
replies generating or queued; one more is QUEUE_FULL for the user alone, written nothing,
and retryable; two sends racing at the limit less one admit exactly one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from tests.fakes.engine import FakeEngine
from tests.fakes.replicas import FakeNoticeBus
from tests.fakes.rig import SYSTEM_PROMPT, ChatRig, drain, eventually, make_rig, next_event
from tests.fakes.uow import FakeStore

from llamaql.config import load_config
from llamaql.container import create_chat_service
from llamaql.persistence.models import MessageKind, MessageStatus, utc_now
from llamaql.ports.values import Message
from llamaql.services.chat.events import ChatEvent, Completed, Failed, Queued

LIMIT_REASON = "you already have 4 replies generating or queued (the most per user)"


@pytest.fixture
async def rig() -> AsyncIterator[ChatRig]:
    made = make_rig(parallel=2, max_live_replies_per_user=4)  # the default, 4
    await made.engine.start()
    yield made
    await made.service.shutdown()
    await made.engine.stop()


async def hold(rig: ChatRig, cid: uuid.UUID, **kwargs: Any) -> AsyncGenerator[ChatEvent, None]:
    """A send whose reply stays live (paced) until the test allows its pieces."""
    rig.engine.script(paced=True)
    stream = rig.send(cid, **kwargs)
    assert isinstance(await next_event(stream), Queued)
    return stream


async def refused_for_limit(rig: ChatRig, stream: AsyncGenerator[ChatEvent, None]) -> Failed:
    """One Failed, QUEUE_FULL with the user's own limit as reason, nothing written."""
    messages_before = dict(rig.store.messages)
    submitted_before = len(rig.engine.handles)
    prepared_before = len(rig.engine.prepared)
    events = await drain(stream)
    assert len(events) == 1, events
    failed = events[0]
    assert isinstance(failed, Failed)
    assert (failed.code, failed.retryable, failed.assistant_message) == ("QUEUE_FULL", True, None)
    assert LIMIT_REASON in failed.reason
    assert rig.store.messages == messages_before
    assert len(rig.engine.handles) == submitted_before
    assert len(rig.engine.prepared) == prepared_before  # refused before rendering a prompt
    return failed


async def test_one_more_reply_than_the_limit_is_refused_for_that_user_only(
    rig: ChatRig,
) -> None:
    *held, fifth = [await rig.conversation() for _ in range(5)]
    for cid in held:  # their streams close at once: the replies run on, detached
        await (await hold(rig, cid)).aclose()
    assert len([m for m in rig.store.messages.values() if m.status == "GENERATING"]) == 4

    await refused_for_limit(rig, rig.send(fifth))

    other = uuid.uuid4()
    others = rig.send(await rig.conversation(user=other), user=other)
    assert isinstance(await next_event(others), Queued)  # another user still gets in
    for handle in rig.engine.handles[:4]:
        handle.allow(10)
    await eventually(
        lambda: [rig.messages(cid)[-1].status for cid in held] == ["COMPLETE"] * 4,
        "the detached replies end COMPLETE",
    )
    assert isinstance((await drain(others))[-1], Completed)
    assert isinstance((await drain(rig.send(fifth)))[-1], Completed)  # room again


async def test_regenerate_and_edit_count_and_are_refused_the_same_way(rig: ChatRig) -> None:
    done = await rig.conversation()
    await drain(rig.send(done, "first"))
    question, answer = rig.messages(done)
    streams = [await hold(rig, await rig.conversation()) for _ in range(4)]

    await refused_for_limit(rig, rig.service.regenerate(user_id=rig.user, message_id=answer.id))
    await refused_for_limit(
        rig, rig.service.edit(user_id=rig.user, message_id=question.id, text="instead")
    )
    # Closing a stream leaves its reply live; cancelGeneration ends it.
    for stream in streams:
        await stream.aclose()
    for reply in [m for m in rig.store.messages.values() if m.status == "GENERATING"]:
        assert await rig.service.cancel(user_id=rig.user, message_id=reply.id)
    await eventually(
        lambda: not any(m.status == "GENERATING" for m in rig.store.messages.values()),
        "the cancelled replies are saved",
    )
    events = await drain(rig.service.regenerate(user_id=rig.user, message_id=answer.id))
    assert isinstance(events[-1], Completed)


async def test_sends_racing_at_the_limit_less_one_admit_exactly_one(rig: ChatRig) -> None:
    live = [await hold(rig, await rig.conversation()) for _ in range(3)]
    racing = [await rig.conversation() for _ in range(2)]
    # Hold commits: the first send stores its exchange (under the user's lock) and waits;
    # the second passes the early, unlocked count (3 of 4) and must wait for that lock.
    rig.store.commit_gate = asyncio.Event()
    rig.engine.script(paced=True)
    rig.engine.script(paced=True)
    streams = [rig.send(cid) for cid in racing]
    firsts = [asyncio.ensure_future(next_event(stream)) for stream in streams]
    await eventually(lambda: len(rig.engine.prepared) == 5, "both racing sends are past the count")
    rig.store.commit_gate.set()
    results = await asyncio.gather(*firsts)

    assert sorted(type(event).__name__ for event in results) == ["Failed", "Queued"]
    failed = next(event for event in results if isinstance(event, Failed))
    assert (failed.code, failed.retryable) == ("QUEUE_FULL", True)
    assert LIMIT_REASON in failed.reason
    generating = [m for m in rig.store.messages.values() if m.status == "GENERATING"]
    assert len(generating) == 4
    for stream in [*live, *streams]:
        await stream.aclose()


async def test_a_limit_of_one_is_said_in_the_singular() -> None:
    rig = make_rig(max_live_replies_per_user=1)
    await rig.engine.start()
    try:
        stream = await hold(rig, await rig.conversation())
        events = await drain(rig.send(await rig.conversation()))
        assert isinstance(events[0], Failed)
        assert "you already have 1 reply generating or queued" in events[0].reason
        await stream.aclose()
    finally:
        await rig.service.shutdown()
        await rig.engine.stop()


async def test_among_replicas_a_stopped_replicas_leftover_does_not_count() -> None:
    store = FakeStore()
    engine = FakeEngine()
    config = load_config(
        _env_file=None,
        system_prompt=SYSTEM_PROMPT,
        auto_title=False,
        max_live_replies_per_user=1,
        replica_dead_after_seconds=30,
    )
    service = create_chat_service(config, store.factory, engine, replicas=FakeNoticeBus().link("a"))
    rig = ChatRig(store, engine, service)
    await engine.start()
    try:
        dead = await rig.conversation()
        leftover = await _generating_reply(store, rig.user, dead, beat_ago_s=31)
        assert isinstance((await drain(rig.send(await rig.conversation())))[-1], Completed)

        store.messages[leftover.id].heartbeat_at = utc_now()  # its replica beats: it counts
        events = await drain(rig.send(await rig.conversation()))
        assert isinstance(events[0], Failed)
        assert "you already have 1 reply generating or queued" in events[0].reason
    finally:
        await service.shutdown()
        await engine.stop()


async def _generating_reply(
    store: FakeStore, user: uuid.UUID, cid: uuid.UUID, *, beat_ago_s: float
) -> Message:
    """A reply another replica left GENERATING, last marked alive `beat_ago_s` ago."""
    async with store.factory() as uow:
        reply = await uow.messages.add(
            user_id=user,
            conversation_id=cid,
            kind=MessageKind.BOT,
            text="",
            status=MessageStatus.GENERATING,
            replica_id="b",
        )
        await uow.commit()
    store.messages[reply.id].heartbeat_at = utc_now() - timedelta(seconds=beat_ago_s)
    return reply


@pytest.mark.parametrize(
    ("settings", "most"),
    [
        ({}, 4),
        ({"parallel": 1}, 4),
        ({"parallel": 16}, 4),
        ({"parallel": 1, "max_live_replies_per_user": 5}, 5),
    ],
)
def test_the_default_limit_is_four_whatever_the_sequences(
    settings: dict[str, Any], most: int
) -> None:
    assert load_config(_env_file=None, **settings).live_replies_per_user == most
