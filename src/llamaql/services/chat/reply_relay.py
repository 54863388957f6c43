"""The generating replica's side of watching a reply from another replica.

Relaying every reply's text over LISTEN/NOTIFY would cost one NOTIFY per frame of every
reply whether anyone elsewhere watches or not. So it is relayed only on request: a
replica watching a reply of this one sends a `WatchNotice` (with how much text it has)
when it starts and every `ANNOUNCE_S` while it watches; this replica answers with the
text it lacks, then relays each new piece (as a `TextNotice` with its offset) until the
reply ends or no request came for `LEASE_S`. A lost notice costs nothing but time: the
watcher finds the gap by the offsets and asks again, and it polls the checkpointed text.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from llamaql.ports.replicas import ReplicaLink, ReplyNotice, TextNotice, WatchNotice
from llamaql.services.chat.events import Delta
from llamaql.services.chat.live_replies import LiveReplies
from llamaql.services.chat.reply_feed import FeedWatcher

logger = logging.getLogger(__name__)

ANNOUNCE_S = 2.0  # a watcher on another replica repeats its request this often
LEASE_S = 3 * ANNOUNCE_S  # relaying stops this long after the last request


class ReplyRelay:
    """Relays this process's replies to the replicas that ask for them."""

    def __init__(self, live: LiveReplies, replicas: ReplicaLink) -> None:
        self._live = live
        self._replicas = replicas
        self._leases: dict[uuid.UUID, float] = {}  # message -> relay until (loop time)

    @property
    def relaying(self) -> int:
        return len(self._leases)

    def on_notice(self, notice: ReplyNotice) -> None:
        """A watch request for one of this process's replies: send what the watcher
        lacks now and relay the rest (TextNotices are the watchers' business)."""
        if not isinstance(notice, WatchNotice):
            return
        generation = self._live.of_message(notice.message_id)
        if generation is None or generation.told.is_set():
            return
        feed = generation.feed
        have = min(notice.have, feed.length)
        relaying = notice.message_id in self._leases
        self._leases[notice.message_id] = asyncio.get_running_loop().time() + LEASE_S
        if relaying:
            if have < feed.length:  # a second watcher, or a lost notice
                self._send(TextNotice(notice.message_id, have, feed.text[have:]))
            return
        # The watcher's first delta is the text from `have` on: the catch-up.
        watcher = feed.watch(have)
        task = self._relay(notice.message_id, watcher, have)
        self._live.keep(asyncio.create_task(task, name=f"relay-{notice.message_id}"))

    async def _relay(self, message_id: uuid.UUID, watcher: FeedWatcher, at: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for event in watcher.events():
                if loop.time() > self._leases.get(message_id, 0.0):
                    return  # nobody asked for a while
                if isinstance(event, Delta):
                    await self._notify(TextNotice(message_id, at, event.text))
                    at += len(event.text)
        finally:
            watcher.close()
            self._leases.pop(message_id, None)

    def _send(self, notice: TextNotice) -> None:
        self._live.keep(asyncio.create_task(self._notify(notice)))

    async def _notify(self, notice: TextNotice) -> None:
        try:
            await self._replicas.send_reply_notice(notice)
        except Exception as exc:  # the watcher polls the checkpoint and asks again
            logger.warning("could not relay reply %s's text: %s", notice.message_id, exc)
