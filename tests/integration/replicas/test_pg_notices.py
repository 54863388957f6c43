"""PgReplicaLink on a real PostgreSQL: a cancel notice reaches every replica's listener,
a malformed one is ignored, and a listener whose connection is killed comes back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Collection
from typing import Generic, TypeVar

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from llamaql.persistence.db import create_db_engine, create_session_factory
from llamaql.persistence.migrations import migrate
from llamaql.persistence.replica_link import (
    CHANNEL,
    REPLY_CHANNEL,
    TEXT_CHARS,
    PgReplicaLink,
    asyncpg_dsn,
    listener_name,
)
from llamaql.persistence.repositories import make_uow_factory
from llamaql.persistence.repositories.events import EVENTS_CHANNEL
from llamaql.ports.events import EventKind
from llamaql.ports.replicas import ReplyNotice, StopNotice, TextNotice, WatchNotice

WAIT_S = 20.0
T = TypeVar("T")


@pytest.fixture
async def db_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_db_engine(pg_url)
    yield engine
    await engine.dispose()


class Heard(Generic[T]):
    """A handler that records what it heard (notices, or woken users) and wakes waiters."""

    def __init__(self) -> None:
        self.notices: list[T] = []
        self._changed = asyncio.Event()

    def __call__(self, notice: T) -> None:
        self.hear_all((notice,))

    def hear_all(self, notices: Collection[T]) -> None:
        self.notices.extend(notices)
        self._changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while len(self.notices) < count:
                self._changed.clear()
                await self._changed.wait()


async def started_link(
    pg_url: str, db_engine: AsyncEngine, name: str
) -> tuple[PgReplicaLink, Heard[StopNotice]]:
    link = PgReplicaLink(
        database_url=pg_url, db_engine=db_engine, replica_id=name, ping_every_s=0.2
    )
    heard: Heard[StopNotice] = Heard()
    link.on_cancel(heard)
    await link.start()
    return link, heard


async def test_a_cancel_notice_reaches_every_replica(pg_url: str, db_engine: AsyncEngine) -> None:
    a, heard_a = await started_link(pg_url, db_engine, "replica-a")
    b, heard_b = await started_link(pg_url, db_engine, "replica-b")
    try:
        by_message = StopNotice(uuid.uuid4(), message_id=uuid.uuid4())
        by_conversation = StopNotice(uuid.uuid4(), conversation_id=uuid.uuid4())
        await b.ask_cancel(by_message)
        await a.ask_cancel(by_conversation)
        await heard_a.until(2)
        await heard_b.until(2)  # the sender hears it too (and ignores what is not its own)
        assert heard_a.notices == heard_b.notices == [by_message, by_conversation]
    finally:
        await a.stop()
        await b.stop()


async def test_a_malformed_notice_is_ignored(pg_url: str, db_engine: AsyncEngine) -> None:
    a, heard = await started_link(pg_url, db_engine, "replica-a")
    try:
        async with db_engine.begin() as connection:
            for payload in (
                "not json",
                '{"user": "x", "message": "y"}',
                '{"message": "6f1c1c40-2f4e-4a8e-9d7e-1d2f3a4b5c6d"}',
                '{"user": "6f1c1c40-2f4e-4a8e-9d7e-1d2f3a4b5c6d", "message": 7}',
                "{}",
                "[1]",
            ):
                await connection.execute(
                    text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload}
                )
        notice = StopNotice(uuid.uuid4(), message_id=uuid.uuid4())
        await a.ask_cancel(notice)
        await heard.until(1)
        assert heard.notices == [notice]  # only the well-formed one
    finally:
        await a.stop()


async def _listener_pids(pg_url: str) -> list[int]:
    connection = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = $1",
            listener_name("replica-a"),
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def test_the_listener_comes_back_after_its_connection_is_killed(
    pg_url: str, db_engine: AsyncEngine
) -> None:
    a, heard = await started_link(pg_url, db_engine, "replica-a")
    try:
        [pid] = await _listener_pids(pg_url)
        admin = await asyncpg.connect(asyncpg_dsn(pg_url))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        notice = StopNotice(uuid.uuid4(), message_id=uuid.uuid4())
        # Sent again and again, as a cancelling replica does, until the listener is back.
        async with asyncio.timeout(WAIT_S):
            while not heard.notices:
                await a.ask_cancel(notice)
                await asyncio.sleep(0.2)
        assert heard.notices[0] == notice
        [new_pid] = await _listener_pids(pg_url)
        assert new_pid != pid
    finally:
        await a.stop()


async def test_reply_notices_carry_long_text_in_pieces_under_the_payload_limit(
    pg_url: str, db_engine: AsyncEngine
) -> None:
    a, _ = await started_link(pg_url, db_engine, "replica-a")
    b, _ = await started_link(pg_url, db_engine, "replica-b")
    heard: Heard[ReplyNotice] = Heard()
    b.on_reply_notice(heard)
    try:
        reply = uuid.uuid4()
        # 2,500 characters that each take 4 UTF-8 bytes or a 6-byte JSON escape: one
        # payload would be far over PostgreSQL's 8000 bytes.
        long_text = ("😀\x01" * 1250)[:2500]
        await a.send_reply_notice(WatchNotice(reply, 7))
        await a.send_reply_notice(TextNotice(reply, 10, long_text))
        pieces = -(-len(long_text) // TEXT_CHARS)
        await heard.until(1 + pieces)
        assert heard.notices[0] == WatchNotice(reply, 7)
        texts = heard.notices[1:]
        assert all(isinstance(n, TextNotice) and n.message_id == reply for n in texts)
        assert [n.at for n in texts if isinstance(n, TextNotice)] == [
            10 + i * TEXT_CHARS for i in range(pieces)
        ]
        assert "".join(n.text for n in texts if isinstance(n, TextNotice)) == long_text
        # A malformed reply notice is ignored; the next one still arrives.
        async with db_engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_notify(:c, :p)"), {"c": REPLY_CHANNEL, "p": '{"message": 1}'}
            )
        await a.send_reply_notice(WatchNotice(reply, 0))
        await heard.until(2 + pieces)
        assert heard.notices[-1] == WatchNotice(reply, 0)
    finally:
        await a.stop()
        await b.stop()


async def test_an_events_notice_reaches_every_replica_when_its_transaction_commits(
    pg_url: str, db_engine: AsyncEngine
) -> None:
    await migrate(pg_url)
    uow = make_uow_factory(create_session_factory(db_engine))
    a, _ = await started_link(pg_url, db_engine, "replica-a")
    b, _ = await started_link(pg_url, db_engine, "replica-b")
    woken_a: Heard[uuid.UUID] = Heard()
    woken_b: Heard[uuid.UUID] = Heard()
    a.on_events(woken_a.hear_all)
    b.on_events(woken_b.hear_all)
    user = uuid.uuid4()
    try:
        async with uow() as unit:
            unit.events.record(
                user_id=user, conversation_id=uuid.uuid4(), kind=EventKind.CONVERSATION_CREATED
            )
            # Rolled back: its notice is never delivered.
        async with uow() as unit:
            unit.events.record(
                user_id=user, conversation_id=uuid.uuid4(), kind=EventKind.CONVERSATION_DELETED
            )
            await unit.commit()
        # A malformed notice is ignored; notices arrive in commit order, so the rolled
        # back one would show up before the next.
        async with db_engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_notify(:c, 'not-a-user')"), {"c": EVENTS_CHANNEL}
            )
        other = uuid.uuid4()
        async with uow() as unit:
            unit.events.record(
                user_id=other, conversation_id=uuid.uuid4(), kind=EventKind.REPLY_QUEUED
            )
            await unit.commit()
        await woken_a.until(2)
        await woken_b.until(2)
        assert woken_a.notices == woken_b.notices == [user, other]
    finally:
        await a.stop()
        await b.stop()
