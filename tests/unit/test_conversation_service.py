"""ConversationService on the in-memory unit of work."""

from __future__ import annotations

import uuid

import pytest
from tests.fakes.uow import FakeStore

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.errors import BadInputError, NotFoundError
from llamaql.services.conversations import ConversationService

ALICE = uuid.uuid4()
BOB = uuid.uuid4()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def service(store: FakeStore) -> ConversationService:
    return ConversationService(store.factory, max_text_chars=100)


async def test_create_stores_validated_values(
    service: ConversationService, store: FakeStore
) -> None:
    created = await service.create_conversation(
        ALICE, title="  Trip  ", system_prompt="Be brief.", options={"temperature": 1}
    )
    stored = store.conversations[created.id]
    assert (stored.user_id, stored.title, stored.system_prompt) == (ALICE, "Trip", "Be brief.")
    assert stored.options == {"temperature": 1.0}


async def test_create_rejects_bad_input_and_writes_nothing(
    service: ConversationService, store: FakeStore
) -> None:
    with pytest.raises(BadInputError, match="temperature"):
        await service.create_conversation(ALICE, options={"temperature": 9})
    with pytest.raises(BadInputError, match="title must be at most 200"):
        await service.create_conversation(ALICE, title="x" * 201)
    with pytest.raises(BadInputError, match="systemPrompt must be at most 100"):
        await service.create_conversation(ALICE, system_prompt="x" * 101)
    assert store.conversations == {}


async def test_pages_walk_every_conversation_newest_first(service: ConversationService) -> None:
    ids = [(await service.create_conversation(ALICE, title=str(i))).id for i in range(5)]
    await service.create_conversation(BOB)
    seen: list[uuid.UUID] = []
    after = None
    while True:
        page = await service.list_conversations(ALICE, first=2, after=after)
        assert page.total_count == 5
        seen += [node.id for _, node in page.edges]
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert seen == list(reversed(ids))


async def test_page_size_and_cursor_are_checked(service: ConversationService) -> None:
    for first in (0, 101, -1):
        with pytest.raises(BadInputError, match="first must be between 1 and 100"):
            await service.list_conversations(ALICE, first=first)
    for cursor in ("not base64!", "bTox", ""):
        with pytest.raises(BadInputError, match="after is not a valid cursor"):
            await service.list_conversations(ALICE, after=cursor)


async def test_update_changes_only_given_fields(
    service: ConversationService, store: FakeStore
) -> None:
    created = await service.create_conversation(
        ALICE, title="a", system_prompt="s", options={"top_k": 5}
    )
    await service.update_conversation(ALICE, created.id, {"title": "b"})
    stored = store.conversations[created.id]
    assert (stored.title, stored.system_prompt, stored.options) == ("b", "s", {"top_k": 5})
    await service.update_conversation(ALICE, created.id, {"system_prompt": None, "options": None})
    stored = store.conversations[created.id]
    assert (stored.title, stored.system_prompt, stored.options) == ("b", None, {})


async def test_other_users_conversations_are_not_found(
    service: ConversationService, store: FakeStore
) -> None:
    created = await service.create_conversation(ALICE, title="mine")
    assert (await service.conversation_with_pages(BOB, created.id, []))[0] is None
    with pytest.raises(NotFoundError):
        await service.update_conversation(BOB, created.id, {"title": "stolen"})
    with pytest.raises(NotFoundError):
        await service.delete_conversation(BOB, created.id)
    assert store.conversations[created.id].title == "mine"
    assert (await service.list_conversations(BOB)).total_count == 0


async def test_delete_removes_conversation_and_messages(
    service: ConversationService, store: FakeStore
) -> None:
    created = await service.create_conversation(ALICE)
    async with store.factory() as uow:
        await uow.messages.add(
            user_id=ALICE,
            conversation_id=created.id,
            kind=MessageKind.USER,
            text="hi",
            status=MessageStatus.COMPLETE,
        )
        await uow.commit()
    assert await service.delete_conversation(ALICE, created.id) == created.id
    assert store.conversations == {}
    assert store.messages_of(created.id) == []
    with pytest.raises(NotFoundError):
        await service.delete_conversation(ALICE, created.id)


async def test_messages_page_oldest_first(service: ConversationService, store: FakeStore) -> None:
    created = await service.create_conversation(ALICE)
    async with store.factory() as uow:
        for i in range(3):
            await uow.messages.add(
                user_id=ALICE,
                conversation_id=created.id,
                kind=MessageKind.USER,
                text=str(i),
                status=MessageStatus.COMPLETE,
            )
        await uow.commit()
    first = await service.list_messages(ALICE, created.id, first=2)
    assert [m.text for _, m in first.edges] == ["0", "1"]
    assert (first.has_next_page, first.total_count) == (True, 3)
    rest = await service.list_messages(ALICE, created.id, first=2, after=first.end_cursor)
    assert [m.text for _, m in rest.edges] == ["2"]
    assert not rest.has_next_page
    assert (await service.list_messages(BOB, created.id)).total_count == 0
    assert store.open_units == 0
