"""Storing an exchange on a real database: the statements it takes, and the early submit.

sendMessage's first token waits for these writes, so their number is part of the
contract's cost: one lock per transaction (a conversation locked again in the same
transaction is not locked again), and one UPDATE of the conversation for its new leaf and
activity time together. The prompt is submitted before the writes, so the model works
while they run; a refusal among them cancels it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.engine import Engine, PreparedPrompt, Requester
from llamaql.ports.errors import ConversationBusyError
from llamaql.ports.options import resolve_options
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import SamplingOptions
from llamaql.services.branching import Turn
from llamaql.services.chat.exchange import store_exchange
from llamaql.services.chat.reply_limit import ReplyLimit


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Engine:
    """Records submits; nothing else of the Engine protocol is used here."""

    def __init__(self) -> None:
        self.handles: list[_Handle] = []
        self.statements_before_submit: int | None = None
        self.counter: list[str] | None = None

    def submit(self, prompt: PreparedPrompt, requester: Requester) -> _Handle:
        if self.counter is not None:
            self.statements_before_submit = len(self.counter)
        self.handles.append(_Handle())
        return self.handles[-1]


@contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _conversation(uow: UnitOfWorkFactory, user_id: uuid.UUID) -> Turn:
    async with uow() as unit:
        conversation = await unit.conversations.create(
            user_id=user_id, title="chat", system_prompt=None, options=SamplingOptions()
        )
        await unit.commit()
    return Turn(conversation, None, "Hello")


# What the exchange reads of a prompt is only its model (the fake engine takes it whole).
PROMPT = PreparedPrompt(
    text="",
    tokens=(1,),
    dropped_messages=0,
    options=resolve_options(SamplingOptions(), context_size=512),
)


async def test_an_exchange_is_stored_in_few_statements_after_the_submit(
    uow: UnitOfWorkFactory, engine: AsyncEngine, alice: uuid.UUID
) -> None:
    turn = await _conversation(uow, alice)
    ids = {"conversation_id": turn.conversation.id}
    model = _Engine()
    with _statements(engine) as seen:
        model.counter = seen
        async with uow() as unit:
            stored = await store_exchange(
                unit, cast(Engine, model), user_id=alice, turn=turn, seen=0, prompt=PROMPT
            )
            await unit.commit()
    assert model.statements_before_submit == 0  # the model starts before any write
    writes = [word for word in seen if word in ("INSERT", "UPDATE")]
    # A lock that reads the row (SQLite: a no-op UPDATE ... RETURNING; PostgreSQL:
    # SELECT ... FOR UPDATE), the re-check (count and generating in one), two INSERTs,
    # one UPDATE of the conversation; before, each add locked again and each change was
    # its own UPDATE, and the lock, its read and the re-check took two statements each.
    # The live feed's events (the first-words title, ReplyQueued) are one more INSERT at
    # commit; PostgreSQL also takes the user's events lock and sends its NOTIFY (one
    # statement).
    outbox = 2 if engine.dialect.name == "postgresql" else 1
    assert writes.count("INSERT") == 3
    assert writes.count("UPDATE") <= 2
    assert len([word for word in seen if word not in ("BEGIN", "COMMIT")]) == 5 + outbox

    async with uow() as unit:
        conversation = await unit.conversations.get(user_id=alice, **ids)
        reply = await unit.messages.get(user_id=alice, message_id=stored.reply_id)
    assert conversation is not None
    assert reply is not None
    assert conversation.current_leaf_id == stored.reply_id
    assert conversation.updated_at > turn.conversation.updated_at
    assert reply.parent_id == stored.user_message.id
    assert stored.user_message.parent_id is None
    assert (reply.kind, reply.status) == (MessageKind.BOT, MessageStatus.GENERATING.value)
    assert not model.handles[0].cancelled


async def test_a_busy_recheck_cancels_the_early_submit_and_writes_nothing(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    turn = await _conversation(uow, alice)
    model = _Engine()
    async with uow() as unit:
        with pytest.raises(ConversationBusyError):
            # `seen` says one message was read; the conversation holds none: an exchange
            # changed it since, so the send is refused after its prompt was submitted.
            await store_exchange(
                unit, cast(Engine, model), user_id=alice, turn=turn, seen=1, prompt=PROMPT
            )
    assert model.handles[0].cancelled
    async with uow() as unit:
        assert (
            await unit.messages.count_and_generating(
                user_id=alice, conversation_id=turn.conversation.id
            )
        )[0] == 0


async def test_a_lock_holds_for_one_transaction_and_one_user(
    uow: UnitOfWorkFactory, engine: AsyncEngine, alice: uuid.UUID, bob: uuid.UUID
) -> None:
    turn = await _conversation(uow, alice)
    ids = {"conversation_id": turn.conversation.id}
    async with uow() as unit:
        with _statements(engine) as seen:
            assert await unit.conversations.get_for_update(user_id=alice, **ids) is not None
            first = len(seen)
            assert await unit.conversations.get_for_update(user_id=alice, **ids) is not None
            assert len(seen) == first  # locked already in this transaction
            # Another user's lock is never the one held: it reads (and finds nothing).
            assert await unit.conversations.get_for_update(user_id=bob, **ids) is None
            assert len(seen) > first
            await unit.commit()
            after_commit = len(seen)
            # A new transaction takes the lock again.
            assert await unit.conversations.get_for_update(user_id=alice, **ids) is not None
            assert len(seen) > after_commit


async def test_the_reply_limit_adds_no_statement_on_sqlite(
    uow: UnitOfWorkFactory, engine: AsyncEngine, alice: uuid.UUID
) -> None:
    """The user's live replies are counted in the busy re-check's statement, and locked
    by the conversation's lock already on SQLite (one writer); PostgreSQL takes the
    user's advisory lock."""
    turn = await _conversation(uow, alice)
    model = _Engine()
    with _statements(engine) as seen:
        model.counter = seen
        async with uow() as unit:
            await store_exchange(
                unit,
                cast(Engine, model),
                user_id=alice,
                turn=turn,
                seen=0,
                prompt=PROMPT,
                reply_limit=ReplyLimit(4),
            )
            await unit.commit()
    statements = [word for word in seen if word not in ("BEGIN", "COMMIT")]
    # Each with the live feed's outbox at commit: one INSERT (SQLite), plus the user's
    # events lock with the NOTIFY (PostgreSQL).
    assert len(statements) == (5 + 1 if engine.dialect.name == "sqlite" else 6 + 2)
