"""replyStream: follow a user's reply from character `after` on, wherever it generates.

A reply of this process is watched on its feed (`ReplyFeed.watch`: the text from
`after` as one delta, then every piece, then the terminal event). A reply that ended is
read from its row: the rest of its text, then the terminal event it ended with. A reply
generating on another replica is followed through its row, polled every `POLL_S` (its
checkpointed text, and its status: a replica that dies leaves it to the recovery, whose
FAILED/interrupted row ends the watch), and, sooner, through the text the generating
replica relays on request (`reply_relay`). Every source gives a prefix of the same final
text, so the watcher keeps one position and sends each character once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator

from llamaql.ports.errors import BadInputError, DomainError, NotFoundError
from llamaql.ports.replicas import ReplicaLink, ReplyNotice, TextNotice, WatchNotice
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import Message, MessageKind, MessageStatus
from llamaql.services.chat.events import ChatEvent, Completed, Delta, Failed
from llamaql.services.chat.live_replies import LiveReplies
from llamaql.services.chat.reply_relay import ANNOUNCE_S
from llamaql.services.chat.reply_store import ENGINE_FAILED

logger = logging.getLogger(__name__)

POLL_S = 0.5  # a remote reply's row is read this often
ASK_AGAIN_S = 0.25  # after a gap in the relayed text, ask again at most this often
HELD_PIECES = 64  # relayed pieces that arrived ahead of a gap, kept until it fills
INTERRUPTED = (
    "the reply was interrupted (the server generating it stopped); its text so far is kept; "
    "try again"
)
DELETED = "the conversation was deleted"


def ended_event(message: Message) -> ChatEvent:
    """The terminal event of a reply that ended, as its stream sent it."""
    if message.status != MessageStatus.FAILED.value:
        return Completed(message)
    reason = INTERRUPTED if message.finish_reason == "interrupted" else ENGINE_FAILED
    return Failed("ENGINE_ERROR", reason, True, message)


class RemoteText:
    """The text of a reply followed from elsewhere, from position `at` on: pieces at
    any offset go in (relayed, checkpointed, repeated, out of order); each character
    comes out once, in order."""

    def __init__(self, at: int) -> None:
        self.at = at  # characters already taken
        self._new: list[str] = []
        self._ahead: dict[int, str] = {}  # offset -> piece beyond a gap
        self.gap = False
        self.ready = asyncio.Event()

    @property
    def known(self) -> int:
        return self.at + sum(len(piece) for piece in self._new)

    def offer(self, at: int, text: str) -> None:
        known = self.known
        if at > known:
            self.gap = True
            if len(self._ahead) < HELD_PIECES:
                self._ahead[at] = text
            return
        if at + len(text) > known:
            self._new.append(text[known - at :])
            self.ready.set()
            self._fill()

    def _fill(self) -> None:
        ahead, self._ahead = self._ahead, {}
        for at in sorted(ahead):
            self.offer(at, ahead[at])
        self.gap = bool(self._ahead)

    def take(self) -> str:
        """The text not taken yet."""
        text = "".join(self._new)
        self._new = []
        self.ready.clear()
        self.at += len(text)
        return text


class ReplyWatch:
    """Follows replies for replyStream; hears the text other replicas relay."""

    def __init__(
        self, uow_factory: UnitOfWorkFactory, live: LiveReplies, replicas: ReplicaLink
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._replicas = replicas
        self._remote: dict[uuid.UUID, set[RemoteText]] = {}

    def on_notice(self, notice: ReplyNotice) -> None:
        if isinstance(notice, TextNotice):
            for text in self._remote.get(notice.message_id, ()):
                text.offer(notice.at, notice.text)

    async def watch(
        self, *, user_id: uuid.UUID, message_id: uuid.UUID, after: int
    ) -> AsyncGenerator[ChatEvent, None]:
        """The rest of the text from `after`, the live deltas, then the terminal event;
        a refusal (not found, bad `after`) is one Failed."""
        try:
            if after < 0:
                raise BadInputError(f"after must be 0 or more, got {after}")
            message = await self._read(user_id, message_id)
            if message is None or message.kind != MessageKind.BOT:
                raise NotFoundError(f"message {message_id} not found")
            ended = message.status != MessageStatus.GENERATING.value
            if ended and after > len(message.text):
                raise BadInputError(
                    f"after must be at most the reply's length ({len(message.text)}), got {after}"
                )
            generation = self._live.of_message(message_id)
            watcher = generation.feed.watch(after) if generation is not None else None
        except DomainError as exc:
            yield Failed(exc.code, exc.message, exc.retryable)
            return
        if watcher is not None:
            async for event in watcher.events():
                yield event
            return
        async for event in self._follow(user_id, message, after):
            yield event

    async def _follow(
        self, user_id: uuid.UUID, message: Message, after: int
    ) -> AsyncGenerator[ChatEvent, None]:
        """A reply not live here: from its row (and relayed text) until it ends, or
        until it turns out to be live here after all (it was being submitted)."""
        message_id = message.id
        text = RemoteText(after)
        self._remote.setdefault(message_id, set()).add(text)
        loop = asyncio.get_running_loop()
        poll_at = loop.time() + POLL_S
        asked_at = float("-inf")
        try:
            while True:
                generation = self._live.of_message(message_id)
                if generation is not None:
                    piece = text.take()
                    if piece:
                        yield Delta(message_id, piece)
                    watcher = generation.feed.watch(min(text.at, generation.feed.length))
                    async for event in watcher.events():
                        yield event
                    return
                text.offer(0, message.text)  # the checkpoint, or the final text
                generating = message.status == MessageStatus.GENERATING.value
                now = loop.time()
                if (
                    generating
                    and self._replicas.shared
                    and (
                        now - asked_at >= ANNOUNCE_S or (text.gap and now - asked_at >= ASK_AGAIN_S)
                    )
                ):
                    asked_at = now
                    self._ask(message_id, text.known)
                piece = text.take()
                if piece:
                    yield Delta(message_id, piece)
                if not generating:
                    yield ended_event(message)
                    return
                await _wait_for_text(text, poll_at - loop.time())
                if loop.time() >= poll_at:
                    poll_at = loop.time() + POLL_S
                    read = await self._read(user_id, message_id)
                    if read is None:
                        yield Failed("NOT_FOUND", DELETED, False)
                        return
                    message = read
        finally:
            watching = self._remote.get(message_id)
            if watching is not None:
                watching.discard(text)
                if not watching:
                    del self._remote[message_id]

    def _ask(self, message_id: uuid.UUID, have: int) -> None:
        self._live.keep(asyncio.create_task(self._send_ask(WatchNotice(message_id, have))))

    async def _send_ask(self, notice: WatchNotice) -> None:
        try:
            await self._replicas.send_reply_notice(notice)
        except Exception as exc:  # polling the checkpoint goes on meanwhile
            logger.warning("could not ask for reply %s's text: %s", notice.message_id, exc)

    async def _read(self, user_id: uuid.UUID, message_id: uuid.UUID) -> Message | None:
        async with self._uow_factory() as uow:
            return await uow.messages.get(user_id=user_id, message_id=message_id)


async def _wait_for_text(text: RemoteText, timeout_s: float) -> None:
    """Until relayed text arrives, or `timeout_s` passes."""
    if text.ready.is_set() or timeout_s <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(text.ready.wait(), timeout_s)
