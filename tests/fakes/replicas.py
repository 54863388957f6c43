"""Replicas on one fake database: a notice bus that behaves like LISTEN/NOTIFY.

Every link on the bus hears every notice (the sender too), after the sender's await,
as PostgreSQL delivers a NOTIFY once the sending transaction commits.
"""

from __future__ import annotations

import asyncio

from llamaql.ports.events import UsersWoken
from llamaql.ports.replicas import (
    CancelHandler,
    ReplyNotice,
    ReplyNoticeHandler,
    StopNotice,
    TextNotice,
)


class FakeNoticeBus:
    """The shared database's notification channel."""

    def __init__(self) -> None:
        self.links: list[FakeReplicaLink] = []
        self.sent: list[StopNotice] = []
        self.reply_notices: list[ReplyNotice] = []
        self.drop_text = False  # True: text notices are lost (the watcher must poll)

    def link(self, replica_id: str) -> FakeReplicaLink:
        link = FakeReplicaLink(self, replica_id)
        self.links.append(link)
        return link


class FakeReplicaLink:
    """A ReplicaLink of one replica, sharing the database (`shared`)."""

    shared = True

    def __init__(self, bus: FakeNoticeBus, replica_id: str) -> None:
        self.replica_id = replica_id
        self.listening = True  # False: its listener is reconnecting, notices are lost
        self._bus = bus
        self._handlers: list[CancelHandler] = []
        self._reply_handlers: list[ReplyNoticeHandler] = []

    def on_reply_notice(self, handler: ReplyNoticeHandler) -> None:
        self._reply_handlers.append(handler)

    async def send_reply_notice(self, notice: ReplyNotice) -> None:
        self._bus.reply_notices.append(notice)
        if self._bus.drop_text and isinstance(notice, TextNotice):
            return
        loop = asyncio.get_running_loop()
        for link in self._bus.links:
            if link.listening:
                for handler in link._reply_handlers:
                    loop.call_soon(handler, notice)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._handlers.append(handler)

    def on_events(self, handler: UsersWoken) -> None:
        """Events notices are not modelled: the fake units of work ring a bell."""

    async def ask_cancel(self, notice: StopNotice) -> None:
        self._bus.sent.append(notice)
        loop = asyncio.get_running_loop()
        for link in self._bus.links:
            if link.listening:
                for handler in link._handlers:
                    loop.call_soon(handler, notice)

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to close."""
