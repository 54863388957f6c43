"""A database that cannot be reached: a coded, retryable error, a reply kept in memory
until its save goes through, a conversation that is never left busy, and a heartbeat
that keeps alive only the replies this process still holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta
from typing import Any, cast

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from tests.fakes.engine import FakeEngine
from tests.fakes.rig import ChatRig, drain, eventually, make_rig, next_event
from tests.fakes.uow import FakeStore

from llamaql.api.enums import ErrorCode
from llamaql.api.errors import error_code_of
from llamaql.config import load_config
from llamaql.container import create_chat_service
from llamaql.persistence.models import MessageKind, MessageStatus, utc_now
from llamaql.persistence.outages import is_unreachable
from llamaql.persistence.repositories.uow import is_contention
from llamaql.ports.errors import DatabaseUnavailableError
from llamaql.ports.events import EventKind
from llamaql.ports.repositories import UnitOfWork
from llamaql.services.chat.events import ChatEvent, Completed, Delta, Failed, Queued
from llamaql.services.chat.generation import KEPT
from llamaql.services.replicas import Heartbeat

REPLICA = "replica-a"


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _dbapi(message: str, sqlstate: str | None = None, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError(
        "SELECT 1", None, _DriverError(message, sqlstate), connection_invalidated=invalidated
    )


def _caused(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        PoolTimeoutError("QueuePool limit of size 5 overflow 10 reached"),
        _dbapi("connection is closed", invalidated=True),
        _dbapi('database "x" is not currently accepting connections', "55000"),
        _dbapi("terminating connection due to administrator command", "57P01"),
        _dbapi("the database system is starting up", "57P03"),
        _dbapi("connection failure", "08006"),
        _dbapi("sorry, too many clients already", "53300"),
        _dbapi("unable to open database file"),
        _caused(RuntimeError("wrapped"), ConnectionRefusedError()),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_unreachable_database_is_recognised(error: Exception) -> None:
    assert is_unreachable(error)


@pytest.mark.parametrize(
    "error",
    [
        _dbapi("duplicate key value violates unique constraint", "23505"),
        _dbapi("could not serialize access", "40001"),
        _dbapi("database is locked"),
        _dbapi('database "x" is being accessed by other users', "55006"),
        ValueError("a bug"),
    ],
    ids=lambda error: str(error)[:30],
)
def test_other_database_errors_are_not_an_outage(error: Exception) -> None:
    assert not is_unreachable(error)


def test_contention_is_still_contention_not_an_outage() -> None:
    error = _dbapi("could not serialize access", "40001")
    assert is_contention(error)
    assert not is_unreachable(error)


def test_the_edge_gives_service_unavailable_retryable() -> None:
    code, message, retryable = error_code_of(DatabaseUnavailableError()) or ("", "", False)
    assert (code, retryable) == ("SERVICE_UNAVAILABLE", True)
    assert "database" in message
    assert ErrorCode(code) is ErrorCode.SERVICE_UNAVAILABLE  # MessageFailed.code too


@pytest.fixture
async def rig() -> AsyncIterator[ChatRig]:
    made = make_rig(db_timeout_seconds=2.0, replica_id=REPLICA)
    await made.engine.start()
    yield made
    made.store.unreachable = False
    await made.service.shutdown()
    await made.engine.stop()


async def _streaming(
    rig: ChatRig, cid: uuid.UUID
) -> tuple[AsyncGenerator[ChatEvent, None], uuid.UUID]:
    rig.engine.script(paced=True)
    stream = rig.send(cid)
    queued = await next_event(stream)
    assert isinstance(queued, Queued)
    rig.engine.handles[-1].allow(1)
    assert isinstance(await next_event(stream), Delta)
    reply_id = queued.assistant_message_id
    # ReplyStarted commits on its own, a few loop passes after the first piece.
    started = (EventKind.REPLY_STARTED, reply_id)
    await eventually(
        lambda: any((e.kind, e.message_id) == started for e in rig.store.events), "started"
    )
    return stream, reply_id


async def _ended_during_outage(rig: ChatRig, cid: uuid.UUID) -> tuple[Failed, uuid.UUID]:
    """A reply that ends while the database is unreachable: its terminal event."""
    stream, reply_id = await _streaming(rig, cid)
    rig.store.unreachable = True
    rig.engine.handles[-1].allow(10)
    *_, last = await drain(stream)
    assert isinstance(last, Failed), last
    return last, reply_id


async def test_a_send_while_the_database_is_away_is_refused_retryable(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.store.unreachable = True
    (failed,) = await drain(rig.send(cid))
    assert isinstance(failed, Failed)
    assert (failed.code, failed.retryable, failed.assistant_message) == (
        "SERVICE_UNAVAILABLE",
        True,
        None,
    )
    rig.store.unreachable = False
    assert rig.messages(cid) == []
    assert rig.engine.handles == []


async def test_a_reply_ending_in_an_outage_is_kept_and_saved_when_it_is_back(
    rig: ChatRig,
) -> None:
    cid = await rig.conversation()
    failed, reply_id = await _ended_during_outage(rig, cid)
    assert (failed.code, failed.reason, failed.retryable) == ("SERVICE_UNAVAILABLE", KEPT, True)
    assert rig.service.owned_replies() == [reply_id]  # still this process's: kept alive
    assert rig.messages(cid)[-1].status == "GENERATING"

    rig.store.unreachable = False
    await eventually(lambda: rig.messages(cid)[-1].status == "COMPLETE", "the late save")
    assert rig.messages(cid)[-1].text == "Hello, world."
    await eventually(lambda: not rig.service.owned_replies(), "the reply let go")


async def test_the_next_send_waits_for_the_kept_reply_instead_of_busy(rig: ChatRig) -> None:
    cid = await rig.conversation()
    await _ended_during_outage(rig, cid)
    rig.store.unreachable = False
    *_, last = await drain(rig.send(cid, "And then?"))
    assert isinstance(last, Completed), last  # never CONVERSATION_BUSY
    replies = [m for m in rig.messages(cid) if m.kind == 2]
    assert [m.status for m in replies] == ["COMPLETE", "COMPLETE"]


async def test_cancel_of_a_kept_reply_answers_at_once(rig: ChatRig) -> None:
    cid = await rig.conversation()
    _, reply_id = await _ended_during_outage(rig, cid)
    cancelled = await asyncio.wait_for(
        rig.service.cancel(user_id=rig.user, message_id=reply_id), 1.0
    )
    assert cancelled


async def test_a_send_while_the_kept_reply_still_cannot_be_saved_is_retryable() -> None:
    rig = make_rig(db_timeout_seconds=0.2)
    await rig.engine.start()
    cid = await rig.conversation()
    await _ended_during_outage(rig, cid)
    # The conversation's reads answer, but the reply's save keeps failing.
    rig.store.unreachable = False
    rig.store.finish_unreachable = True
    (failed,) = await drain(rig.send(cid, "Again?"))
    assert isinstance(failed, Failed)
    assert (failed.code, failed.retryable) == ("SERVICE_UNAVAILABLE", True)
    rig.store.finish_unreachable = False
    await rig.service.shutdown()
    await rig.engine.stop()


async def test_a_save_is_given_up_after_the_retry_time_and_left_to_recovery() -> None:
    rig = make_rig(save_retry_seconds=0.3)
    await rig.engine.start()
    cid = await rig.conversation()
    await _ended_during_outage(rig, cid)
    await eventually(lambda: not rig.service.owned_replies(), "the save given up")
    rig.store.unreachable = False
    assert rig.messages(cid)[-1].status == "GENERATING"  # the heartbeat's sweep takes it
    await rig.service.shutdown()
    await rig.engine.stop()


async def test_shutdown_does_not_wait_minutes_for_a_kept_reply(rig: ChatRig) -> None:
    cid = await rig.conversation()
    await _ended_during_outage(rig, cid)
    await asyncio.wait_for(rig.service.shutdown(), 2.0)


async def test_the_heartbeat_keeps_alive_only_the_replies_held_in_memory(rig: ChatRig) -> None:
    cid = await rig.conversation()
    _, held = await _streaming(rig, cid)
    other = await rig.conversation()
    async with rig.store.factory() as uow:  # a reply of this replica nobody holds any more
        orphan = await uow.messages.add(
            user_id=rig.user,
            conversation_id=other,
            kind=MessageKind.BOT,
            text="so far",
            status=MessageStatus.GENERATING,
            replica_id=REPLICA,
        )
        await uow.commit()
    for message in rig.store.messages.values():  # both last beaten long ago
        message.heartbeat_at = utc_now() - timedelta(hours=1)
    heartbeat = Heartbeat(
        rig.store.factory,
        replica_id=REPLICA,
        every_s=60.0,
        dead_after_s=60.0,
        owned=rig.service.owned_replies,
    )

    assert await heartbeat.beat() == 1

    assert rig.store.messages[held].status == "GENERATING"
    stored = rig.store.messages[orphan.id]
    assert (stored.status, stored.finish_reason, stored.text) == ("FAILED", "interrupted", "so far")
    rig.engine.handles[-1].allow(10)


class _Blackhole:
    """A FakeStore's units of work, except that while `on` each new unit hangs until
    `release()` lets exactly one through, failing as unreachable (a database that
    relays nothing, then the timeout)."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.on = False
        self.waiting = 0
        self._gate = asyncio.Semaphore(0)

    def release(self) -> None:
        self._gate.release()

    def factory(self) -> UnitOfWork:
        return cast(UnitOfWork, _BlackholeUnit(self))


class _BlackholeUnit:
    def __init__(self, blackhole: _Blackhole) -> None:
        self._blackhole = blackhole
        self._inner = blackhole.store.factory()

    async def __aenter__(self) -> Any:
        if self._blackhole.on:
            self._blackhole.waiting += 1
            try:
                await self._blackhole._gate.acquire()
            finally:
                self._blackhole.waiting -= 1
            raise DatabaseUnavailableError()
        return await self._inner.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


async def test_a_checkpoint_failed_by_the_outage_tells_the_client_without_a_second_wait() -> None:
    # The reply ends while a checkpoint hangs in a blackhole. Once that checkpoint times
    # out, the client hears at once; it does not wait for the save to time out as well.
    store, engine = FakeStore(), FakeEngine()
    blackhole = _Blackhole(store)
    config = load_config(_env_file=None, auto_title=False, checkpoint_seconds=0.001)
    service = create_chat_service(config, blackhole.factory, engine, save_retry_pauses=(0.0,))
    await engine.start()
    rig = ChatRig(store, engine, service)
    cid = await rig.conversation()
    stream, reply_id = await _streaming(rig, cid)
    blackhole.on = True
    await asyncio.sleep(0.01)  # past checkpoint_seconds: the next piece starts one
    engine.handles[-1].allow(1)
    await eventually(lambda: blackhole.waiting == 1, "a checkpoint in the blackhole")
    engine.handles[-1].allow(10)  # the reply ends while its checkpoint hangs
    await asyncio.wait_for(engine.handles[-1].finished.wait(), 5.0)
    await asyncio.sleep(0.05)  # the reply's task reads the end and waits for its checkpoint
    blackhole.release()  # the checkpoint times out; the save's first try now hangs

    *_, last = await drain(stream)

    assert isinstance(last, Failed)
    assert (last.code, last.reason) == ("SERVICE_UNAVAILABLE", KEPT)
    assert service.owned_replies() == [reply_id]
    blackhole.on = False
    blackhole.release()  # the hanging try fails; the next one goes through
    await eventually(lambda: store.messages[reply_id].status == "COMPLETE", "the late save")
    await service.shutdown()
    await engine.stop()
