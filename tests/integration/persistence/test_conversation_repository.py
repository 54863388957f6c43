"""SqlConversationRepository on a real database (SQLite file, PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col

from llamaql.persistence.db import SessionFactory
from llamaql.persistence.models import Conversation, MessageKind, MessageStatus
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import Conversation as ConversationValue
from llamaql.ports.values import SamplingOptions

pytestmark = pytest.mark.contract


async def _create(uow: UnitOfWorkFactory, user_id: uuid.UUID, title: str) -> ConversationValue:
    async with uow() as unit:
        conversation = await unit.conversations.create(
            user_id=user_id, title=title, system_prompt=None, options=SamplingOptions()
        )
        await unit.commit()
    return conversation


async def _set_updated_at(
    session_factory: SessionFactory, ids: list[uuid.UUID], when: datetime
) -> None:
    async with session_factory() as session:
        await session.exec(
            update(Conversation).where(col(Conversation.id).in_(ids)).values(updated_at=when)
        )
        await session.commit()


async def test_create_then_get_round_trips_every_field(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    async with uow() as unit:
        created = await unit.conversations.create(
            user_id=alice,
            title="Trip",
            system_prompt="Be brief.",
            options=SamplingOptions(temperature=0.2, stop=("\n\n",)),
        )
        await unit.commit()

    async with uow() as unit:
        loaded = await unit.conversations.get(user_id=alice, conversation_id=created.id)

    assert loaded is not None
    assert isinstance(loaded.id, uuid.UUID)
    assert loaded.id == created.id
    assert loaded.user_id == alice
    assert (loaded.title, loaded.system_prompt) == ("Trip", "Be brief.")
    assert loaded.options == SamplingOptions(temperature=0.2, stop=("\n\n",))
    # Aware UTC on SQLite too, and equal to what was written.
    assert loaded.created_at.utcoffset() == timedelta(0)
    assert loaded.created_at == created.created_at
    assert loaded.updated_at == created.updated_at


async def test_get_unknown_id_is_none(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async with uow() as unit:
        assert await unit.conversations.get(user_id=alice, conversation_id=uuid.uuid4()) is None


async def test_get_for_update_returns_the_row(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    created = await _create(uow, alice, "locked")
    async with uow() as unit:
        locked = await unit.conversations.get_for_update(user_id=alice, conversation_id=created.id)
        missing = await unit.conversations.get_for_update(
            user_id=alice, conversation_id=uuid.uuid4()
        )
    assert locked is not None
    assert locked.title == "locked"
    assert missing is None


async def test_list_page_newest_activity_first(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    first = await _create(uow, alice, "first")
    await _create(uow, alice, "second")
    await _create(uow, alice, "third")
    async with uow() as unit:
        await unit.conversations.touch(user_id=alice, conversation_id=first.id)
        await unit.commit()

    async with uow() as unit:
        page = await unit.conversations.list_page(user_id=alice, limit=10, after=None)

    assert [c.title for c in page] == ["first", "third", "second"]


async def test_list_page_keyset_with_equal_timestamps(
    uow: UnitOfWorkFactory, session_factory: SessionFactory, alice: uuid.UUID
) -> None:
    same = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    tied = [await _create(uow, alice, f"tied {i}") for i in range(5)]
    newer = await _create(uow, alice, "newer")
    older = await _create(uow, alice, "older")
    await _set_updated_at(session_factory, [c.id for c in tied], same)
    await _set_updated_at(session_factory, [newer.id], same + timedelta(microseconds=1))
    await _set_updated_at(session_factory, [older.id], same - timedelta(microseconds=1))

    seen: list[uuid.UUID] = []
    after: tuple[datetime, uuid.UUID] | None = None
    async with uow() as unit:
        while True:
            page = await unit.conversations.list_page(user_id=alice, limit=2, after=after)
            if not page:
                break
            seen.extend(c.id for c in page)
            after = (page[-1].updated_at, page[-1].id)

    tied_ids = sorted((c.id for c in tied), reverse=True)
    assert seen == [newer.id, *tied_ids, older.id]


async def test_list_page_limit_and_empty(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    for i in range(3):
        await _create(uow, alice, f"c{i}")
    async with uow() as unit:
        assert len(await unit.conversations.list_page(user_id=alice, limit=2, after=None)) == 2
        assert await unit.conversations.list_page(user_id=uuid.uuid4(), limit=2, after=None) == []


async def test_count(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async with uow() as unit:
        assert await unit.conversations.count(user_id=alice) == 0
    for i in range(3):
        await _create(uow, alice, f"c{i}")
    async with uow() as unit:
        assert await unit.conversations.count(user_id=alice) == 3


async def test_update_changes_columns_and_moves_updated_at(
    uow: UnitOfWorkFactory, session_factory: SessionFactory, alice: uuid.UUID
) -> None:
    created = await _create(uow, alice, "old")
    past = datetime(2020, 1, 1, tzinfo=UTC)
    await _set_updated_at(session_factory, [created.id], past)

    async with uow() as unit:
        updated = await unit.conversations.update(
            user_id=alice,
            conversation_id=created.id,
            changes={"title": "new", "system_prompt": "Rhyme.", "options": SamplingOptions(seed=7)},
        )
        await unit.commit()
    async with uow() as unit:
        loaded = await unit.conversations.get(user_id=alice, conversation_id=created.id)

    assert updated is not None
    assert loaded is not None
    assert (loaded.title, loaded.system_prompt, loaded.options) == (
        "new",
        "Rhyme.",
        SamplingOptions(seed=7),
    )
    assert loaded.updated_at > past
    assert loaded.created_at == created.created_at


async def test_update_absent_is_none(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async with uow() as unit:
        result = await unit.conversations.update(
            user_id=alice, conversation_id=uuid.uuid4(), changes={"title": "x"}
        )
    assert result is None


@pytest.mark.parametrize("column", ["user_id", "id", "created_at", "no_such_column"])
async def test_update_refuses_non_updatable_columns(
    uow: UnitOfWorkFactory, alice: uuid.UUID, column: str
) -> None:
    created = await _create(uow, alice, "c")
    async with uow() as unit:
        with pytest.raises(AttributeError, match=column):
            await unit.conversations.update(
                user_id=alice, conversation_id=created.id, changes={column: uuid.uuid4()}
            )


async def test_touch_moves_updated_at(
    uow: UnitOfWorkFactory, session_factory: SessionFactory, alice: uuid.UUID
) -> None:
    created = await _create(uow, alice, "c")
    past = datetime(2020, 1, 1, tzinfo=UTC)
    await _set_updated_at(session_factory, [created.id], past)
    async with uow() as unit:
        await unit.conversations.touch(user_id=alice, conversation_id=created.id)
        await unit.commit()
    async with uow() as unit:
        loaded = await unit.conversations.get(user_id=alice, conversation_id=created.id)
    assert loaded is not None
    assert loaded.updated_at > past
    assert loaded.title == "c"


async def test_delete_removes_the_conversation_and_its_messages(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    doomed = await _create(uow, alice, "doomed")
    kept = await _create(uow, alice, "kept")
    async with uow() as unit:
        for conversation in (doomed, kept):
            await unit.messages.add(
                user_id=alice,
                conversation_id=conversation.id,
                kind=MessageKind.USER,
                text="hi",
                status=MessageStatus.COMPLETE,
            )
        doomed_message = await unit.messages.add(
            user_id=alice,
            conversation_id=doomed.id,
            kind=MessageKind.BOT,
            text="hello",
            status=MessageStatus.COMPLETE,
        )
        await unit.commit()

    async with uow() as unit:
        assert await unit.conversations.delete(user_id=alice, conversation_id=doomed.id)
        await unit.commit()

    async with uow() as unit:
        assert await unit.conversations.get(user_id=alice, conversation_id=doomed.id) is None
        assert await unit.messages.get(user_id=alice, message_id=doomed_message.id) is None
        assert (await unit.messages.count_and_generating(user_id=alice, conversation_id=doomed.id))[
            0
        ] == 0
        assert (await unit.messages.count_and_generating(user_id=alice, conversation_id=kept.id))[
            0
        ] == 1
        assert not await unit.conversations.delete(user_id=alice, conversation_id=doomed.id)


async def test_get_sees_a_locked_conversation_as_this_unit_changed_it(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    """A message added under the lock moves the leaf before anything is flushed; a read
    in the same unit sees the new leaf, and a read before the lock the stored one."""
    created = await _create(uow, alice, "locked")
    ids = {"user_id": alice, "conversation_id": created.id}
    async with uow() as unit:
        before = await unit.conversations.get(**ids)
        assert before is not None
        assert before.current_leaf_id is None
        assert await unit.conversations.get_for_update(**ids) is not None
        message = await unit.messages.add(
            user_id=alice,
            conversation_id=created.id,
            kind=MessageKind.USER,
            text="hello",
            status=MessageStatus.COMPLETE,
        )
        seen = await unit.conversations.get(**ids)
        assert seen is not None
        assert seen.current_leaf_id == message.id
        assert (
            await unit.conversations.get(user_id=uuid.uuid4(), conversation_id=created.id) is None
        )
