"""In-memory repositories over a fake unit of work's pending view (see uow.py)."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from tests.fakes.branches import branch_to

from llamaql.persistence.models import Conversation, Message, MessageKind, MessageStatus, utc_now
from llamaql.persistence.repositories.rows import conversation_value, message_value, write_usage
from llamaql.persistence.repositories.snippets import snippet_of
from llamaql.ports import values
from llamaql.ports.errors import DatabaseUnavailableError
from llamaql.ports.events import ReplyRef
from llamaql.ports.repositories import AFTER_CURRENT_LEAF, Append
from llamaql.ports.search import SearchHit

if TYPE_CHECKING:
    from tests.fakes.uow import FakeUnitOfWork

_Row = TypeVar("_Row", Conversation, Message)


def _generating(row: Message | None, user_id: uuid.UUID, replica_id: str | None) -> bool:
    """Whether a reply may still be written: the user's, GENERATING, by that replica."""
    return (
        row is not None
        and row.user_id == user_id
        and row.status == MessageStatus.GENERATING.value
        and (replica_id is None or row.replica_id == replica_id)
    )


def _copy(row: _Row) -> _Row:
    # model_dump() copies nested JSON (options) too, so nothing is shared.
    return type(row)(**row.model_dump())


class FakeConversationRepository:
    """ConversationRepository over a unit of work's pending view: rows inside, values
    out, as the SQL one."""

    def __init__(self, unit: FakeUnitOfWork) -> None:
        self._unit = unit

    def _owned(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> Conversation | None:
        row = self._unit.pending.conversation(conversation_id)
        return row if row is not None and row.user_id == user_id else None

    async def create(
        self,
        *,
        user_id: uuid.UUID,
        title: str | None,
        system_prompt: str | None,
        options: values.SamplingOptions,
        model: str | None = None,
    ) -> values.Conversation:
        row = Conversation(
            user_id=user_id,
            title=title,
            system_prompt=system_prompt,
            options=options.to_dict(),
            model=model,
        )
        self._unit.pending.conversations[row.id] = row
        return conversation_value(row)

    async def get(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> values.Conversation | None:
        row = self._owned(user_id, conversation_id)
        return None if row is None else conversation_value(row)

    async def get_for_update(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> values.Conversation | None:
        row = self._owned(user_id, conversation_id)
        if row is None:
            return None
        await self._unit.lock(conversation_id)
        # Re-read: another unit may have committed while this one waited for the lock.
        return await self.get(user_id=user_id, conversation_id=conversation_id)

    async def list_page(
        self, *, user_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[values.Conversation]:
        rows = [c for c in self._unit.pending.all_conversations() if c.user_id == user_id]
        rows.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
        if after is not None:
            rows = [c for c in rows if (c.updated_at, c.id) < after]
        return [conversation_value(c) for c in rows[:limit]]

    async def count(self, *, user_id: uuid.UUID) -> int:
        return sum(1 for c in self._unit.pending.all_conversations() if c.user_id == user_id)

    async def update(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, changes: dict[str, Any]
    ) -> values.Conversation | None:
        unknown = set(changes) - values.UPDATABLE_FIELDS
        if unknown:  # before the lookup, as the SQL repository checks
            raise AttributeError(f"cannot update Conversation column(s) {sorted(unknown)}")
        row = self._owned(user_id, conversation_id)
        if row is None:
            return None
        updated = _copy(row)
        for name, value in changes.items():
            setattr(updated, name, value.to_dict() if name == "options" else value)
        updated.updated_at = utc_now()
        self._unit.pending.conversations[conversation_id] = updated
        return conversation_value(updated)

    async def touch(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        await self.update(user_id=user_id, conversation_id=conversation_id, changes={})

    async def delete(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
        if self._owned(user_id, conversation_id) is None:
            return False
        self._unit.pending.conversations[conversation_id] = None
        for message in self._unit.pending.all_messages():
            if message.conversation_id == conversation_id:
                self._unit.pending.messages[message.id] = None
        return True


class FakeMessageRepository:
    """MessageRepository over a unit of work's pending view: rows inside, values out."""

    def __init__(self, unit: FakeUnitOfWork) -> None:
        self._unit = unit

    def _of(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> list[Message]:
        rows = [
            m
            for m in self._unit.pending.all_messages()
            if m.user_id == user_id and m.conversation_id == conversation_id
        ]
        return sorted(rows, key=lambda m: m.seq)

    def _current_branch(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> list[Message]:
        conversation = self._unit.pending.conversation(conversation_id)
        if conversation is None or conversation.user_id != user_id:
            return []
        return branch_to(self._of(user_id, conversation_id), conversation.current_leaf_id)

    async def add(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        parent_id: uuid.UUID | Append | None = AFTER_CURRENT_LEAF,
        kind: MessageKind,
        text: str,
        status: MessageStatus,
        replica_id: str | None = None,
        model: str | None = None,
    ) -> values.Message:
        conversation = self._unit.pending.conversation(conversation_id)
        if conversation is None or conversation.user_id != user_id:
            # The SQL repository fails on the foreign key / ownership check the same way.
            raise LookupError(f"conversation {conversation_id} not found for this user")
        # Locked like the SQL repository's (FOR UPDATE), then read again: another unit
        # may have appended and committed while this one waited.
        await self._unit.lock(conversation_id)
        conversation = self._unit.pending.conversation(conversation_id)
        if conversation is None:
            raise LookupError(f"conversation {conversation_id} not found for this user")
        existing = [
            m.seq for m in self._unit.pending.all_messages() if m.conversation_id == conversation_id
        ]
        row = Message(
            conversation_id=conversation_id,
            user_id=user_id,
            seq=max(existing, default=0) + 1,
            parent_id=conversation.current_leaf_id
            if parent_id is AFTER_CURRENT_LEAF
            else parent_id,
            kind=int(kind),
            text=text,
            status=status.value,
            replica_id=replica_id,
            heartbeat_at=utc_now() if replica_id is not None else None,
            model=model,
        )
        self._unit.pending.messages[row.id] = row
        self._unit.pending.conversations[conversation_id] = conversation.model_copy(
            update={"current_leaf_id": row.id}
        )
        return message_value(row)

    async def get(self, *, user_id: uuid.UUID, message_id: uuid.UUID) -> values.Message | None:
        row = self._unit.pending.message(message_id)
        return message_value(row) if row is not None and row.user_id == user_id else None

    async def list_page(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        limit: int,
        after_seq: int | None,
    ) -> Sequence[values.Message]:
        rows = self._current_branch(user_id, conversation_id)
        if after_seq is not None:
            rows = [m for m in rows if m.seq > after_seq]
        return [message_value(m) for m in rows[:limit]]

    async def list_pages(
        self,
        *,
        user_id: uuid.UUID,
        after_seqs: Mapping[uuid.UUID, int | None],
        limit: int,
    ) -> dict[uuid.UUID, list[values.Message]]:
        return {
            conversation_id: list(
                await self.list_page(
                    user_id=user_id,
                    conversation_id=conversation_id,
                    limit=limit,
                    after_seq=after_seq,
                )
            )
            for conversation_id, after_seq in after_seqs.items()
        }

    async def counts(
        self, *, user_id: uuid.UUID, conversation_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        return {c: len(self._current_branch(user_id, c)) for c in conversation_ids}

    async def count_and_generating(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> tuple[int, bool]:
        ids = {"user_id": user_id, "conversation_id": conversation_id}
        return len(self._of(user_id, conversation_id)), await self.has_generating(**ids)

    async def has_generating(self, *, user_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
        return any(
            m.status == MessageStatus.GENERATING.value for m in self._of(user_id, conversation_id)
        )

    async def lock_user_replies(self, *, user_id: uuid.UUID) -> None:
        # The fake's locks are keyed by id; a user's id never names a conversation.
        await self._unit.lock(user_id)

    async def exchange_counts(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        alive_within_s: float | None = None,
    ) -> tuple[int, bool, int]:
        count, generating = await self.count_and_generating(
            user_id=user_id, conversation_id=conversation_id
        )
        return (
            count,
            generating,
            await self.count_live_replies(user_id=user_id, alive_within_s=alive_within_s),
        )

    async def count_live_replies(
        self, *, user_id: uuid.UUID, alive_within_s: float | None = None
    ) -> int:
        since = None if alive_within_s is None else utc_now() - timedelta(seconds=alive_within_s)
        return sum(
            1
            for m in self._unit.pending.all_messages()
            if m.user_id == user_id
            and m.status == MessageStatus.GENERATING.value
            and m.kind == int(MessageKind.BOT)
            and (since is None or (m.heartbeat_at is not None and m.heartbeat_at >= since))
        )

    async def finish(
        self,
        *,
        user_id: uuid.UUID,
        message_id: uuid.UUID,
        text: str,
        status: MessageStatus,
        finish_reason: str | None,
        usage: values.Usage | None,
        dropped_messages: int | None,
        replica_id: str | None = None,
    ) -> values.Message | None:
        if self._unit.store.finish_unreachable:
            raise DatabaseUnavailableError()
        row = self._unit.pending.message(message_id)
        if not _generating(row, user_id, replica_id):
            return None
        assert row is not None
        updated = _copy(row)
        updated.text = text
        updated.status = status.value
        updated.finish_reason = finish_reason
        updated.dropped_messages = dropped_messages
        if usage is not None:
            write_usage(updated, usage)
        updated.updated_at = utc_now()
        self._unit.pending.messages[message_id] = updated
        return message_value(updated)

    async def checkpoint(
        self,
        *,
        user_id: uuid.UUID,
        message_id: uuid.UUID,
        text: str,
        replica_id: str | None = None,
    ) -> bool:
        row = self._unit.pending.message(message_id)
        if not _generating(row, user_id, replica_id):
            return False
        assert row is not None
        updated = _copy(row)
        updated.text = text
        updated.updated_at = utc_now()
        self._unit.pending.messages[message_id] = updated
        return True

    async def beat(self, *, replica_id: str, message_ids: Collection[uuid.UUID]) -> int:
        beaten = 0
        for message in self._unit.pending.all_messages():
            generating = message.status == MessageStatus.GENERATING.value
            if generating and message.replica_id == replica_id and message.id in message_ids:
                updated = _copy(message)
                updated.heartbeat_at = utc_now()
                self._unit.pending.messages[message.id] = updated
                beaten += 1
        return beaten

    async def mark_interrupted(
        self, *, dead_after_s: float | None = None, replica_id: str | None = None
    ) -> list[ReplyRef]:
        marked: list[ReplyRef] = []
        for message in self._unit.pending.all_messages():
            if message.status != MessageStatus.GENERATING.value:
                continue
            if dead_after_s is not None and not (
                message.heartbeat_at is None
                or message.heartbeat_at < utc_now() - timedelta(seconds=dead_after_s)
                or (replica_id is not None and message.replica_id == replica_id)
            ):
                continue
            updated = _copy(message)
            updated.status = MessageStatus.FAILED.value
            updated.finish_reason = "interrupted"
            updated.updated_at = utc_now()
            self._unit.pending.messages[message.id] = updated
            marked.append(ReplyRef(message.user_id, message.conversation_id, message.id))
        return marked


_WORD = re.compile(r"[^\W_]+")


class FakeSearchRepository:
    """SearchRepository over a unit of work's pending view: what the SQL one finds.

    A text matches when every term begins one of its words (case-insensitive); more
    matching words in a shorter text rank higher, like bm25 and ts_rank; ties newest
    first. Uncommitted writes of this unit are visible to it, as in a transaction.
    """

    def __init__(self, unit: FakeUnitOfWork) -> None:
        self._unit = unit

    def _hits(self, user_id: uuid.UUID, terms: Sequence[str]) -> list[SearchHit]:
        if not terms:
            return []
        conversations = {
            c.id: c for c in self._unit.pending.all_conversations() if c.user_id == user_id
        }
        texts: list[tuple[Conversation, Message | None, str, datetime]] = [
            (c, None, c.title, c.created_at) for c in conversations.values() if c.title
        ]
        texts += [
            (conversations[m.conversation_id], m, m.text, m.created_at)
            for m in self._unit.pending.all_messages()
            if m.user_id == user_id
            and m.kind in (MessageKind.USER, MessageKind.BOT)
            and m.conversation_id in conversations
        ]
        scored = [
            (
                score,
                at,
                SearchHit(
                    conversation_value(c),
                    None if m is None else message_value(m),
                    snippet_of(body, terms),
                ),
            )
            for c, m, body, at in texts
            if (score := _score(body, terms)) > 0
        ]
        scored.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
        return [hit for _, _, hit in scored]

    async def find(
        self, *, user_id: uuid.UUID, terms: Sequence[str], limit: int, offset: int
    ) -> Sequence[SearchHit]:
        return self._hits(user_id, terms)[offset : offset + limit]

    async def count(self, *, user_id: uuid.UUID, terms: Sequence[str]) -> int:
        return len(self._hits(user_id, terms))


def _score(body: str, terms: Sequence[str]) -> float:
    words = [w.lower() for w in _WORD.findall(body)]
    prefixes = [t.lower() for t in terms]
    if not all(any(w.startswith(p) for w in words) for p in prefixes):
        return 0.0
    matches = sum(1 for w in words if w.startswith(tuple(prefixes)))
    return matches / (1 + math.log(len(words)))
