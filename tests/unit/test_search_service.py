"""SearchService on the in-memory unit of work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from tests.fakes.uow import FakeStore

from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.errors import BadInputError
from llamaql.ports.search import SearchHit
from llamaql.services.conversations import ConversationService
from llamaql.services.ids import encode_conversation_cursor, encode_search_cursor
from llamaql.services.search import MAX_QUERY_CHARS, SearchService, search_terms

ALICE = uuid.uuid4()
BOB = uuid.uuid4()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def service(store: FakeStore) -> SearchService:
    return SearchService(store.factory)


@pytest.fixture
def conversations(store: FakeStore) -> ConversationService:
    return ConversationService(store.factory)


async def _say(store: FakeStore, user: uuid.UUID, conversation_id: uuid.UUID, text: str) -> None:
    async with store.factory() as unit:
        await unit.messages.add(
            user_id=user,
            conversation_id=conversation_id,
            kind=MessageKind.USER,
            text=text,
            status=MessageStatus.COMPLETE,
        )
        await unit.commit()


def _keys(hits: list[SearchHit]) -> list[tuple[uuid.UUID, str | None]]:
    return [(h.conversation.id, h.message.text if h.message else None) for h in hits]


def test_terms_are_the_words_only() -> None:
    assert search_terms('"pen" NEAR(ink*) -quill o\'neil_x') == [
        "pen",
        "NEAR",
        "ink",
        "quill",
        "o",
        "neil",
        "x",
    ]
    assert search_terms("pen pen Pen") == ["pen", "Pen"]
    assert search_terms('" * - ( ) :') == []


async def test_finds_titles_and_messages_of_the_user_only(
    service: SearchService, conversations: ConversationService, store: FakeStore
) -> None:
    mine = await conversations.create_conversation(ALICE, title="Otter notes")
    theirs = await conversations.create_conversation(BOB, title="Otter notes")
    await _say(store, ALICE, mine.id, "otters hold hands while sleeping")
    await _say(store, BOB, theirs.id, "otters use tools")

    page = await service.search(ALICE, "otter")

    assert sorted(_keys([hit for _, hit in page.edges]), key=str) == sorted(
        [(mine.id, None), (mine.id, "otters hold hands while sleeping")], key=str
    )
    assert page.total_count == 2
    title_hit = next(hit for _, hit in page.edges if hit.message is None)
    assert [(p.text, p.highlighted) for p in title_hit.snippet] == [
        ("Otter", True),
        (" notes", False),
    ]


async def test_cursors_walk_every_hit_once(
    service: SearchService, conversations: ConversationService, store: FakeStore
) -> None:
    conversation = await conversations.create_conversation(ALICE)
    for i in range(5):
        await _say(store, ALICE, conversation.id, f"lark {i}")

    seen: list[str | None] = []
    after: str | None = None
    while True:
        page = await service.search(ALICE, "lark", first=2, after=after)
        assert page.total_count == 5
        seen += [hit.message.text if hit.message else None for _, hit in page.edges]
        if not page.has_next_page:
            break
        after = page.end_cursor

    assert sorted(text or "" for text in seen) == [f"lark {i}" for i in range(5)]


async def test_deleted_conversations_are_not_found(
    service: SearchService, conversations: ConversationService, store: FakeStore
) -> None:
    gone = await conversations.create_conversation(ALICE, title="Badger")
    await _say(store, ALICE, gone.id, "badger setts")
    await conversations.delete_conversation(ALICE, gone.id)

    page = await service.search(ALICE, "badger")

    assert (page.edges, page.total_count) == ([], 0)


async def test_renamed_conversations_are_found_by_the_new_title(
    service: SearchService, conversations: ConversationService
) -> None:
    conversation = await conversations.create_conversation(ALICE, title="Draft")
    await conversations.update_conversation(ALICE, conversation.id, {"title": "Final"})

    assert (await service.search(ALICE, "draft")).total_count == 0
    assert (await service.search(ALICE, "final")).total_count == 1


async def test_query_with_no_words_finds_nothing_without_error(service: SearchService) -> None:
    page = await service.search(ALICE, '"*" -')

    assert (page.edges, page.has_next_page, page.total_count) == ([], False, 0)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "query must not be empty"),
        ("   ", "query must not be empty"),
        ("x" * (MAX_QUERY_CHARS + 1), f"at most {MAX_QUERY_CHARS} characters"),
    ],
)
async def test_empty_or_long_queries_are_refused(
    service: SearchService, query: str, message: str
) -> None:
    with pytest.raises(BadInputError, match=message):
        await service.search(ALICE, query)


@pytest.mark.parametrize("first", [0, -1, 101])
async def test_page_size_is_bounded(service: SearchService, first: int) -> None:
    with pytest.raises(BadInputError, match="first must be between 1 and 100"):
        await service.search(ALICE, "x", first=first)


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        encode_conversation_cursor(datetime.now(UTC), ALICE),
        "",
        encode_search_cursor(3)[::-1],
        "czotMQ==",  # "s:-1"
    ],
)
async def test_bad_cursors_are_refused(service: SearchService, cursor: str) -> None:
    with pytest.raises(BadInputError, match="after is not a valid cursor"):
        await service.search(ALICE, "x", after=cursor)
