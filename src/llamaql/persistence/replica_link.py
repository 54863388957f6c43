"""Notices between replicas sharing one PostgreSQL: LISTEN/NOTIFY.

Three channels: cancel (stop) notices; reply notices (a replica watching another's
reply asks for its text, and the replica generating it sends the text in pieces of at
most `TEXT_CHARS` characters, so a payload stays under PostgreSQL's 8000 bytes even when
every character is escaped); and new-event notices for the live feed (a user id).

`PgReplicaLink` (a services.replicas.ReplicaLink) LISTENs on one dedicated asyncpg
connection: LISTEN belongs to a session, and a pooled connection is handed to other
work. The connection is checked every `ping_every_s` (or at once when asyncpg sees it
close) and reopened when lost; a notice sent meanwhile is lost, which is why a
cancelling replica sends it again until the reply stops, and why the event dispatcher
also polls (an events notice, `EVENTS_CHANNEL`, only wakes it). Notices are sent with
`pg_notify` through the application's engine and delivered when that commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from llamaql.persistence.db import DEFAULT_TIMEOUT_S
from llamaql.persistence.outages import is_unreachable
from llamaql.persistence.repositories.events import EVENTS_CHANNEL
from llamaql.ports.errors import DatabaseUnavailableError
from llamaql.ports.events import UsersWoken
from llamaql.ports.replicas import (
    CancelHandler,
    ReplyNotice,
    ReplyNoticeHandler,
    StopNotice,
    TextNotice,
    WatchNotice,
)

logger = logging.getLogger(__name__)

CHANNEL = "llamaql_cancel"
REPLY_CHANNEL = "llamaql_reply"
# JSON of one character is at most 6 bytes ("\u001f"; a non-ASCII one is sent as UTF-8,
# at most 4): 1000 of them and the envelope fit 8000 bytes.
TEXT_CHARS = 1000
RECONNECT_PAUSES_S = (0.5, 1.0, 2.0, 5.0)  # then 5 s between tries, for as long as it takes


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy `postgresql+asyncpg://` URL as a DSN asyncpg.connect accepts."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def listener_name(replica_id: str) -> str:
    """The listener connection's application_name (PostgreSQL keeps 63 bytes of it)."""
    return f"llamaql-listen {replica_id}"[:63]


class PgReplicaLink:
    """This replica among others on one PostgreSQL database."""

    shared = True

    def __init__(
        self,
        *,
        database_url: str,
        db_engine: AsyncEngine,
        replica_id: str,
        ping_every_s: float,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.replica_id = replica_id
        self._timeout_s = timeout_s  # connecting and sending a notice
        self._dsn = asyncpg_dsn(database_url)
        self._db_engine = db_engine
        self._ping_every_s = ping_every_s
        self._handlers: list[CancelHandler] = []
        self._reply_handlers: list[ReplyNoticeHandler] = []
        self._event_handlers: list[UsersWoken] = []
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    def on_cancel(self, handler: CancelHandler) -> None:
        self._handlers.append(handler)

    def on_events(self, handler: UsersWoken) -> None:
        self._event_handlers.append(handler)

    async def ask_cancel(self, notice: StopNotice) -> None:
        payload = json.dumps(
            {
                "user": str(notice.user_id),
                "message": _str(notice.message_id),
                "conversation": _str(notice.conversation_id),
            }
        )
        await self._notify(CHANNEL, [payload])

    def on_reply_notice(self, handler: ReplyNoticeHandler) -> None:
        self._reply_handlers.append(handler)

    async def send_reply_notice(self, notice: ReplyNotice) -> None:
        message = str(notice.message_id)
        if isinstance(notice, WatchNotice):
            payloads = [json.dumps({"message": message, "have": notice.have})]
        else:
            payloads = [
                json.dumps(
                    {
                        "message": message,
                        "at": notice.at + i,
                        "text": notice.text[i : i + TEXT_CHARS],
                    },
                    ensure_ascii=False,
                )
                for i in range(0, len(notice.text), TEXT_CHARS)
            ]
        await self._notify(REPLY_CHANNEL, payloads)

    async def _notify(self, channel: str, payloads: list[str]) -> None:
        """Send the payloads in one transaction (delivered in order when it commits)."""
        try:
            async with asyncio.timeout(self._timeout_s), self._db_engine.begin() as connection:
                for payload in payloads:
                    await connection.execute(
                        text("SELECT pg_notify(:channel, :payload)"),
                        {"channel": channel, "payload": payload},
                    )
        except Exception as exc:
            if is_unreachable(exc):
                raise DatabaseUnavailableError() from exc
            raise

    async def start(self) -> None:
        """Listen (a failure here is the server's start failing), then keep listening."""
        await self._listen()
        self._watcher = asyncio.create_task(self._watch(), name="replica-listener")

    async def stop(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await self._close()

    async def _listen(self) -> None:
        # Named, so an operator finds each replica's listener in pg_stat_activity.
        connection = await asyncpg.connect(
            self._dsn,
            server_settings={"application_name": listener_name(self.replica_id)},
            timeout=self._timeout_s,
        )
        self._lost.clear()
        connection.add_termination_listener(lambda _connection: self._lost.set())
        await connection.add_listener(CHANNEL, self._received)
        await connection.add_listener(REPLY_CHANNEL, self._received_reply)
        await connection.add_listener(EVENTS_CHANNEL, self._events_received)
        self._connection = connection
        logger.info("replica %s listening for cancel notices", self.replica_id)

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), self._ping_every_s)
            except Exception:
                connection.terminate()

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._ping_every_s)
            if not self._lost.is_set() and await self._alive():
                continue
            logger.warning("replica %s lost its cancel-notice connection", self.replica_id)
            await self._close()
            await self._reconnect()

    async def _alive(self) -> bool:
        connection = self._connection
        if connection is None:
            return False
        try:
            await asyncio.wait_for(connection.fetchval("SELECT 1"), self._ping_every_s)
        except Exception:
            return False
        return True

    async def _reconnect(self) -> None:
        attempt = 0
        while True:
            try:
                await self._listen()
                return
            except Exception as exc:
                pause = RECONNECT_PAUSES_S[min(attempt, len(RECONNECT_PAUSES_S) - 1)]
                logger.warning("cannot listen for cancel notices (retry in %gs): %s", pause, exc)
                attempt += 1
                await asyncio.sleep(pause)

    def _received(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            body = json.loads(payload)
            notice = StopNotice(
                uuid.UUID(body["user"]),
                message_id=_uuid(body.get("message")),
                conversation_id=_uuid(body.get("conversation")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("ignoring a malformed cancel notice")
            return
        for handler in self._handlers:
            try:
                handler(notice)
            except Exception:  # asyncpg's callback must not raise into its protocol
                logger.exception("cancel notice %s failed", notice)

    def _events_received(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            user_id = uuid.UUID(payload)
        except ValueError:
            logger.warning("ignoring a malformed events notice")
            return
        for handler in self._event_handlers:
            try:
                handler((user_id,))
            except Exception:  # asyncpg's callback must not raise into its protocol
                logger.exception("events notice for %s failed", user_id)

    def _received_reply(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            notice = _reply_notice(json.loads(payload))
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("ignoring a malformed reply notice")
            return
        for handler in self._reply_handlers:
            try:
                handler(notice)
            except Exception:  # asyncpg's callback must not raise into its protocol
                logger.exception("reply notice for %s failed", notice.message_id)


def _reply_notice(body: dict[str, Any]) -> ReplyNotice:
    message_id = uuid.UUID(body["message"])
    if "have" in body:
        return WatchNotice(message_id, _index(body["have"]))
    if not isinstance(body["text"], str):
        raise TypeError("text must be a string")
    return TextNotice(message_id, _index(body["at"]), body["text"])


def _index(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"expected a character index, got {value!r}")
    return value


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _uuid(value: object) -> uuid.UUID | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__}")
    return uuid.UUID(value)
