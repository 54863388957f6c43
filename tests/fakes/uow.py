"""An in-memory unit of work that behaves like the SQL one (ports/repositories.py).

Faithful where services could notice a difference:
- every repository method filters on the owning user;
- nothing a unit of work writes is visible to others until commit(), and exit without
  commit() rolls it back;
- callers get values (frozen), never the rows it keeps, as from the SQL repositories;
- get_for_update() holds a per-conversation lock until the unit of work ends, like
  SELECT ... FOR UPDATE on PostgreSQL; lock_user_replies() a per-user one, like its
  advisory lock.

Tests can inspect `FakeStore` directly, make the next commit fail
(`fail_next_commit`, or the next N: `fail_commits`), hold commits until an event is set
(`commit_gate`), make the database unreachable (`unreachable`), and check `open_units`
to prove no unit of work is held open.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from tests.fakes.branches import FakeBranchRepository
from tests.fakes.events import FakeEventRepository
from tests.fakes.repositories import (
    FakeConversationRepository,
    FakeMessageRepository,
    FakeSearchRepository,
)

from llamaql.persistence.models import Conversation, Message
from llamaql.ports.errors import DatabaseUnavailableError
from llamaql.ports.events import EventBell, EventRepository, StoredEvent
from llamaql.ports.repositories import (
    BranchRepository,
    ConversationRepository,
    MessageRepository,
)
from llamaql.ports.search import SearchRepository


class CommitFailedError(Exception):
    """Raised by a fake commit that a test told to fail."""


@dataclass
class FakeStore:
    """The committed state: what the database holds."""

    conversations: dict[uuid.UUID, Conversation] = field(default_factory=dict)
    messages: dict[uuid.UUID, Message] = field(default_factory=dict)
    commits: int = 0
    open_units: int = 0
    max_open_units: int = 0
    fail_next_commit: bool = False
    fail_commits: int = 0  # how many of the next commits fail
    commit_gate: asyncio.Event | None = None
    # While True every unit of work fails to open, as SqlUnitOfWork does when the
    # database cannot be reached (DatabaseUnavailableError, nothing read or written).
    unreachable: bool = False
    finish_unreachable: bool = False  # only a reply's final save fails so
    locks: dict[uuid.UUID, asyncio.Lock] = field(default_factory=dict)
    lock_waiters: int = 0  # units of work waiting for one of `locks` now
    events: list[StoredEvent] = field(default_factory=list)  # the committed outbox
    event_key: int = 0
    bell: EventBell | None = None  # rung after a commit that wrote events

    def factory(self) -> FakeUnitOfWork:
        """A UnitOfWorkFactory: `FakeStore().factory`."""
        return FakeUnitOfWork(self)

    def messages_of(self, conversation_id: uuid.UUID) -> list[Message]:
        """Committed messages of a conversation, oldest first (for assertions)."""
        rows = [m for m in self.messages.values() if m.conversation_id == conversation_id]
        return sorted(rows, key=lambda m: m.seq)


class _Pending:
    """Writes of one unit of work, applied to the store on commit."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.conversations: dict[uuid.UUID, Conversation | None] = {}
        self.messages: dict[uuid.UUID, Message | None] = {}

    def conversation(self, conversation_id: uuid.UUID) -> Conversation | None:
        if conversation_id in self.conversations:
            return self.conversations[conversation_id]
        return self.store.conversations.get(conversation_id)

    def all_conversations(self) -> list[Conversation]:
        ids = set(self.store.conversations) | set(self.conversations)
        return [c for i in ids if (c := self.conversation(i)) is not None]

    def message(self, message_id: uuid.UUID) -> Message | None:
        if message_id in self.messages:
            return self.messages[message_id]
        return self.store.messages.get(message_id)

    def all_messages(self) -> list[Message]:
        ids = set(self.store.messages) | set(self.messages)
        return [m for i in ids if (m := self.message(i)) is not None]

    def apply(self) -> None:
        for cid, conversation in self.conversations.items():
            if conversation is None:
                self.store.conversations.pop(cid, None)
            else:
                self.store.conversations[cid] = conversation
        for mid, message in self.messages.items():
            if message is None:
                self.store.messages.pop(mid, None)
            else:
                self.store.messages[mid] = message
        self.conversations.clear()
        self.messages.clear()


class FakeUnitOfWork:
    """UnitOfWork over a FakeStore; rolls back on exit unless committed."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.pending = _Pending(store)
        # Typed as the ports so mypy checks the fakes against the protocols.
        self.conversations: ConversationRepository = FakeConversationRepository(self)
        self.messages: MessageRepository = FakeMessageRepository(self)
        self.branches: BranchRepository = FakeBranchRepository(self)
        self.search: SearchRepository = FakeSearchRepository(self)
        self._outbox = FakeEventRepository(self)
        self.events: EventRepository = self._outbox
        self.committed = False
        self._opened = False
        self._held: list[asyncio.Lock] = []

    async def lock(self, key: uuid.UUID) -> None:
        """Hold the lock on `key` (a conversation's row, a user's replies) until this
        unit of work ends."""
        lock = self.store.locks.setdefault(key, asyncio.Lock())
        if lock not in self._held:
            self.store.lock_waiters += 1
            try:
                await lock.acquire()
            finally:
                self.store.lock_waiters -= 1
            self._held.append(lock)

    async def __aenter__(self) -> Self:
        if self._opened:
            raise RuntimeError("this unit of work is already open; create a new one")
        self._opened = True
        if self.store.unreachable:
            raise DatabaseUnavailableError()
        self.store.open_units += 1
        self.store.max_open_units = max(self.store.max_open_units, self.store.open_units)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.pending.conversations.clear()
        self.pending.messages.clear()
        self._outbox.recorded.clear()
        for lock in self._held:
            lock.release()
        self._held.clear()
        self.store.open_units -= 1

    async def commit(self) -> None:
        if self.store.commit_gate is not None:
            await self.store.commit_gate.wait()
        if self.store.fail_next_commit or self.store.fail_commits:
            self.store.fail_next_commit = False
            self.store.fail_commits = max(0, self.store.fail_commits - 1)
            raise CommitFailedError("commit failed (injected by the test)")
        self.pending.apply()
        users = self._outbox.flush()
        self.store.commits += 1
        self.committed = True
        if self.store.bell is not None:
            self.store.bell.ring(users)
